"""The console's pages (SPEC §5a). Every view is wrapped by auth.page (session, CSRF, headers)."""
from __future__ import annotations

import json
import math
import time
from typing import Any

import redis
from flask import Blueprint, Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from automation.live import LiveRuleSet
from automation.render import short
from prepr_automation import dialect, history, store
from prepr_automation.settings import Settings

from . import charts, status
from .auth import (check_csrf, known_device, page, remember_device, secured, sign_in, sign_out, signed_in,
                   token_matches)
from .explain import explain as explain_event
from .titles import titles

PAGE_SIZE = 50
COUNT_CAP = 20_000  # events counted per view of the list (newest first)


def _number(name: str) -> float | None:
    """A finite number from the query string, or None when absent; anything else is a 400."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        abort(400, f"?{name}= must be a number, not {text[:40]!r}.")
    return value


def _safe_next(target: str | None) -> str:
    """Only a path inside the console, in printable ASCII: never an open redirect or a header split."""
    if not target or not target.isascii() or not target.isprintable() or "\\" in target:
        return "/console"
    if not (target == "/console" or target.startswith(("/console/", "/console?"))):
        return "/console"
    return target


def make_blueprint(settings: Settings, client: redis.Redis, live: LiveRuleSet) -> Blueprint:
    bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                   static_folder="static")
    from flask import current_app

    @bp.context_processor
    def _globals() -> dict[str, Any]:
        return {"csrf_token": generate_csrf, "when": charts.when, "signed_in": signed_in}

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        error, code, wait = None, 200, 0
        if request.method == "POST":
            refused = check_csrf()
            if refused is not None:
                return refused
            sign_ins, device = current_app.extensions["console_sign_ins"], known_device()
            try:
                wait = sign_ins.wait(device)
                if wait:
                    error, code = f"Too many failed sign-ins. Try again in {wait} s.", 429
                elif token_matches(request.form.get("token", ""), settings.admin_token or ""):
                    sign_in()
                    response = secured(redirect(_safe_next(request.args.get("next"))))
                    remember_device(response)
                    return response
                else:
                    sign_ins.failed(device)
                    error, code = "That is not the admin token.", 401
            except redis.RedisError:
                error, code, wait = "The store (Redis) is not reachable; try again shortly.", 503, 5
        response = make_response(render_template("console/login.html", error=error), code)
        if code in (429, 503):
            response.headers["Retry-After"] = str(wait)
        return secured(response)

    @bp.post("/logout")
    @page
    def logout() -> Response:
        sign_out()
        return redirect(url_for("console.login"))

    @bp.get("/console.css")
    def stylesheet() -> Response:
        return secured(bp.send_static_file("console.css"))

    @bp.get("", strict_slashes=False)
    @page
    def events() -> str:
        filters = {k: (request.args.get(k) or "").strip() or None for k in ("outcome", "event", "rule")}
        before = _number("before")
        hours = int(min(max(_number("hours") or 3, 1), 24))
        rows, examined = history.recent(client, PAGE_SIZE, before, **filters)
        buckets = history.per_minute(client, hours * 60)
        older = rows[-1].at if len(rows) == PAGE_SIZE else None
        counts, counted = history.outcome_counts(client, time.time() - hours * 3600, COUNT_CAP)
        outcomes = sorted(set(counts) | {"done", "no change", "no rule matched", "dead-lettered",
                                                           "ignored", "queued", "retrying"})
        rules = live.current()
        return render_template("console/events.html", rows=rows, examined=examined, filters=filters,
                               counts=counts, counted=counted, count_cap=COUNT_CAP,
                               duplicates=history.totals(buckets).get("duplicate", 0), titles=titles(client, settings, rows),
                               chart=charts.per_minute(buckets), hours=hours,
                               older=older, outcomes=outcomes, rule_ids=[r.id for r in rules.rules] if rules else [],
                               indexed=client.zcard(history.INDEX))

    def _trace(event_id: str) -> dict[str, Any]:
        trace = store.read_trace(client, event_id)
        if trace is None:
            abort(404, "No trace for this event (unknown, or older than 7 days).")
        return trace

    @bp.get("/events/<eventid:event_id>")
    @page
    def event(event_id: str) -> str:
        trace = _trace(event_id)
        return render_template("console/event.html", event_id=event_id, trace=trace, run=trace.get("run") or {},
                               envelope=trace.get("envelope"), explained=None,
                               bulk={k: v for k, v in trace.items() if k.startswith("bulk:")})

    @bp.get("/events/<eventid:event_id>/explain")
    @page
    def explain(event_id: str) -> str:
        """A dry run of the stored envelope against the rules in force now: evaluated, nothing sent."""
        trace = _trace(event_id)
        envelope = trace.get("envelope")
        rules = live.current()
        explained: dict[str, Any]
        if not isinstance(envelope, dict):
            explained = {"error": "This event's envelope was not kept (received before the console existed)."}
        elif rules is None:
            explained = {"error": "No valid rule set is loaded; see Rules."}
        else:
            explained = explain_event(rules, envelope, settings, client)  # as the worker would: item fetched now
        return render_template("console/event.html", event_id=event_id, trace=trace, run=trace.get("run") or {},
                               envelope=envelope, explained=explained,
                               bulk={k: v for k, v in trace.items() if k.startswith("bulk:")})

    @bp.post("/events/<eventid:event_id>/replay")
    @page
    def replay(event_id: str) -> Response:
        from tasks.replay import replay_event

        envelope = _trace(event_id).get("envelope")
        if not isinstance(envelope, dict):
            flash("This event's envelope was not kept; it cannot be replayed.", "error")
        else:
            replay_event(envelope)
            flash("Replayed: queued again. This page shows the new run once the worker has handled it.", "ok")
        return redirect(url_for("console.event", event_id=event_id))

    @bp.post("/events/<event_id>/send-effect")
    @page
    def send_effect(event_id: str) -> Response:
        """Send once an effect the trace shows as unknown (tasks.effects): a second click finds it asked."""
        from tasks.effects import ask, unknown_entry

        key = request.form.get("key", "")
        if unknown_entry(_trace(event_id).get("run") or {}, key) is None:
            flash("That effect is not unknown: nothing to send.", "error")
        elif ask(client, event_id, key):
            flash("Queued: the effect is sent once. This page shows it as sent once the worker has.", "ok")
        else:
            flash("That effect was already asked for: it is sent once, not again.", "error")
        return redirect(url_for("console.event", event_id=event_id))

    @bp.get("/dead-letters")
    @page
    def dead_letters() -> str:
        from tasks.deadletters import DeadLetters

        letters = sorted(DeadLetters(client), key=lambda letter: -letter.at)
        return render_template("console/dead_letters.html", letters=letters)

    @bp.post("/dead-letters/replay")
    @page
    def replay_letters() -> Response:
        from tasks.deadletters import DeadLetters
        from tasks.replay import replay_letters as replay_them

        ids, dead = request.form.getlist("letter_id"), DeadLetters(client)
        replayed, missing = replay_them(dead, ids or None)
        already = [i for i in missing if dead.was_replayed(i)]
        unknown = [i for i in missing if i not in already]
        flash(f"Replayed {len(replayed)} dead letter(s)." + (f" Already replayed: {', '.join(already)}." if already else "")
              + (f" Not found: {', '.join(unknown)}." if unknown else ""), "error" if unknown else "ok")
        return redirect(url_for("console.dead_letters"))

    @bp.get("/rules")
    @page
    def rules() -> str:
        rule_set = live.current()
        return render_template("console/rules.html", status=live.status, errors=live.errors, rules=rule_set,
                               loaded_at=live.loaded_at, failed_at=live.failed_at)

    @bp.get("/status")
    @page
    def status_page() -> str:
        snap = status.snapshot(client, settings.rate_limit)
        snap["dialect"], snap["dialect_how"] = dialect.known(settings, client)
        return render_template("console/status.html", s=snap, api_url=settings.api_url)

    @bp.errorhandler(400)
    def bad_request(exc: Any) -> Response:
        body = render_template("console/error.html", title="Bad request", message=exc.description)
        return secured(make_response(body, 400))

    @bp.errorhandler(404)
    def not_found(exc: Any) -> Response:
        body = render_template("console/error.html", title="Not found", message=exc.description)
        return secured(make_response(body, 404))

    bp.add_app_template_filter(short, "short")

    @bp.app_template_filter("pretty")
    def pretty(value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)

    return bp
