"""`doctor`'s questions to Prepr: is the token accepted, which dialect, which user it writes as.

Read-only and few: one call decides token and dialect (the detection call of SPEC §9, or the
collection PREPR_API names), one more only when neither dialect's collection answers, and one
GET per item (at most MAX_ITEMS) to learn the token's user.

Prepr documents no call that names the user an access token is bound to. What it does return is
`updated_by` on a content item (`fields=updated_by`): the user who changed it last. So the
token's user is read from the newest item the worker wrote (its run's trace in the store holds
the PUT), provided nobody changed the item since (its `changed_on` is close to that run). Before
the worker's first write there is nothing to read, and the line says so (a ✓ with that note).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Iterator
from urllib.parse import unquote

import redis

from prepr.client import PreprClient
from prepr.dialects import DIALECTS, PUBLICATIONS, Dialect, detect
from prepr.errors import PreprConnectionError, PreprError, PreprNotFound
from prepr_automation import dialect as remembered
from prepr_automation import compact, history, store
from prepr_automation.settings import Settings

from .doctor_lines import Line, bad, good

SCOPES = "content_items, content_items_publish, content_items_delete"
SETUP = "docs/prepr-setup.md"
NEWEST_EVENTS = 200  # the traces searched for the worker's newest writes
MAX_ITEMS = 3  # items fetched to read their `updated_by`
SAME_RUN = 120.0  # seconds: an item changed later than this after our run was changed by someone else
_PUT = re.compile(r"^/(?:content_items|publications)/([^/]+)$")


def _probe(client: PreprClient, dialect: Dialect) -> bool:
    """Does the dialect's item collection answer? (404: no; other failures raise)."""
    try:
        client.request("GET", dialect.items, params=[("limit", 1), ("fields", "id")])
    except PreprNotFound:
        return False
    return True


def prepr_lines(settings: Settings, client_redis: redis.Redis | None) -> tuple[list[Line], str | None]:
    """The token's and the dialect's lines, the user's line, and the dialect when Prepr told it."""
    if not settings.access_token:
        return [bad("PREPR_ACCESS_TOKEN is not set",
                    f"create an access token in Prepr (Settings → Access tokens, REST API scopes {SCOPES}, "
                    f"bound to a user) and set it ({SETUP})")], None
    spoken: dict[str, Dialect] = {}  # filled once Prepr has said which dialect it speaks
    api = PreprClient(settings.api_url, settings.access_token, settings.tracking_url, timeout=(3.05, 10),
                      customers_url=settings.customers_url, user_agent="prepr-automation doctor",
                      dialect=lambda: spoken["dialect"])
    try:
        return _ask(settings, api, client_redis, spoken)
    except PreprConnectionError as exc:
        return [bad(f"Prepr at {settings.api_url} does not answer ({exc.message})",
                    "check PREPR_API_URL and this machine's network")], None
    except PreprError as exc:
        if exc.status in (401, 403):
            return [bad(f"the token is refused by Prepr at {settings.api_url} ({exc.status})",
                        f"set PREPR_ACCESS_TOKEN to a valid token of this environment with the REST API scopes "
                        f"{SCOPES} ({SETUP})")], None
        return [bad(f"Prepr at {settings.api_url} answered {exc.status} ({exc.method} {exc.path})",
                    "try again in a minute; if it persists, check PREPR_API_URL")], None
    finally:
        api.close()


def _ask(settings: Settings, api: PreprClient, client_redis: redis.Redis | None,
         spoken: dict[str, Dialect]) -> tuple[list[Line], str | None]:
    token = good(f"the token is accepted by Prepr at {settings.api_url}")
    if settings.prepr_api != "auto":
        named = DIALECTS[settings.prepr_api]
        if not _probe(api, named):
            return [token, bad(f"Prepr does not answer in the {named} dialect (GET {named.items} → 404)",
                               "set PREPR_API=auto to detect it, or name the other dialect")], None
        lines = [token, good(f"Prepr answers in the {named} dialect (PREPR_API={named})")]
        found = named
    else:
        found = detect(api)
        if found is PUBLICATIONS and not _probe(api, PUBLICATIONS):
            return [token, bad(f"neither /content_items nor /publications answers at {settings.api_url} (404)",
                               "set PREPR_API_URL to Prepr's REST API (https://api.eu1.prepr.io)")], None
        lines = [token, _remembered_line(settings, client_redis, found.name)]
    spoken["dialect"] = found  # the item reads below speak it (detected without remembering it)
    return [*lines, user_line(settings, api, client_redis)], found.name


def _remembered_line(settings: Settings, client_redis: redis.Redis | None, found: str) -> Line:
    kept, how = remembered.known(settings, client_redis)
    if kept is None:
        held = "the store is not reachable" if "reachable" in how else "the worker remembers it on its first call"
        return good(f"Prepr speaks the {found} dialect (PREPR_API=auto: detected now; {held})")
    if kept != found:
        return bad(f"Prepr speaks the {found} dialect, but the store remembers {kept} (PREPR_API=auto)",
                   f"set PREPR_API={found}, or wait: the remembered answer expires within a day")
    return good(f"Prepr speaks the {found} dialect (PREPR_API=auto: detected now, and the store remembers it)")


def newest_writes(client_redis: redis.Redis) -> Iterator[tuple[str, float]]:
    """(item id, the event's receipt time) of the worker's newest successful PUTs, newest first."""
    events = client_redis.zrevrange(history.INDEX, 0, NEWEST_EVENTS - 1, withscores=True)
    pipe = client_redis.pipeline(transaction=False)
    for event_id, _ in events:
        pipe.hget(store.trace_key(event_id.decode()), "run")
    seen: set[str] = set()
    for (_, at), raw in zip(events, pipe.execute()):
        try:
            run = compact.loads(raw) if raw else {}
        except ValueError:
            continue
        calls = run.get("calls") if isinstance(run, dict) else None
        for call in reversed(calls if isinstance(calls, list) else []):
            match = _PUT.match(str(call.get("path", ""))) if isinstance(call, dict) else None
            if match and call.get("method") == "PUT" and 200 <= (call.get("status") or 0) < 300:
                item = unquote(match.group(1))
                if item not in seen:
                    seen.add(item)
                    yield item, at


def _writer(api: PreprClient, client_redis: redis.Redis) -> tuple[str | None, str]:
    """(the user id Prepr recorded for the token's newest write, or None; where that came from)."""
    fetched = 0
    for item_id, at in newest_writes(client_redis):
        if fetched >= MAX_ITEMS:
            break
        fetched += 1
        try:
            item = api.get_item(item_id, fields="updated_by,changed_on")
        except PreprNotFound:
            continue
        except PreprError as exc:
            return None, f"reading item {item_id} failed: {exc.message}"
        try:
            changed = datetime.fromisoformat(str(item.get("changed_on"))).timestamp()
        except ValueError:
            changed = at
        if changed > at + SAME_RUN:
            continue  # changed since our write, maybe by an editor: its updated_by says nothing of us
        user = item.get("updated_by")
        user_id = user.get("id") if isinstance(user, dict) else user
        if user_id:
            return str(user_id), f"updated_by of item {item_id}, the worker's newest write"
    if fetched:
        return None, "the items the worker wrote last were changed since, or name no updated_by"
    return None, "no write by the worker is recorded in the store yet"


def user_line(settings: Settings, api: PreprClient, client_redis: redis.Redis | None) -> Line:
    configured = settings.automation_user_id
    try:
        writer, source = (None, "the store is not reachable") if client_redis is None else _writer(api, client_redis)
    except redis.RedisError:
        writer, source = None, "the store is not reachable"
    if not configured:
        also = f"; the token writes as {writer} ({source})" if writer else ""
        return bad("PREPR_AUTOMATION_USER_ID is not set: events of the worker's own writes are taken for editors'",
                   f"set it to the id of the user the token is bound to ({SETUP}){also}")
    if writer is None:
        return good(f"the token's user cannot be checked yet ({source}); PREPR_AUTOMATION_USER_ID is {configured}"
                    " (doctor checks it once the worker has written an item)")
    if writer != configured:
        return bad(f"PREPR_AUTOMATION_USER_ID is {configured}, but the token writes as {writer} ({source})",
                   f"set PREPR_AUTOMATION_USER_ID={writer}")
    return good(f"the token is bound to user {writer}, and PREPR_AUTOMATION_USER_ID matches ({source})")
