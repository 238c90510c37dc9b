"""The short tour `prepr-automation dev` prints once everything answers: what runs where, and
five steps that walk an event from an editor's change to its trace."""
from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import requests

from webhooks.signature import sign

import prepr_automation

INTRO = "Tonight: a football derby at Wembley, then tennis from Wimbledon and the Premier League table."


def examples() -> Path:
    """Where rules/ and examples/ are: inside the installed package (a wheel carries them as
    package data, see setup.py), else the source tree of an editable install."""
    packaged = Path(prepr_automation.__file__).resolve().parent / "examples"
    return packaged if (packaged / "rules").is_dir() else Path(__file__).resolve().parent.parent


def rel(path: str | Path) -> str:
    """A path as short as it can be written from the current folder."""
    try:
        return shlex.quote(str(Path(path).resolve().relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def command() -> str:
    return rel(Path(sys.executable).parent / "prepr-automation")


def curl_line(url: str, event_file: Path, secret: str) -> str:
    signature = sign(event_file.read_bytes(), secret)
    return (f"curl -i -X POST {url}/webhooks/prepr -H 'Content-Type: application/json' "
            f"-H 'Prepr-Signature: {signature}' --data-binary @{rel(event_file)}")


def _demo_article(sandbox: str, token: str) -> tuple[dict, str]:
    """An en-GB Article the example rules have not tagged yet, and an editor to act as (dev's
    sandbox speaks the Mutation API: content items, and customers where persons were)."""
    auth = {"Authorization": f"Bearer {token}"}
    items = requests.get(f"{sandbox}/content_items", params={"limit": 100}, headers=auth, timeout=5).json()["items"]
    customers = requests.get(f"{sandbox}/customers", headers=auth, timeout=5).json()["items"]
    articles = [i for i in items if (i.get("model") or {}).get("body") == "Article" and "en-GB" in (i.get("items") or {})]
    untagged = [i for i in articles if "sport" not in json.dumps(i["items"]["en-GB"].get("tags"))]
    return (untagged or articles)[0], customers[0]["id"]


def _write_shape(value: object) -> object:
    """A field as a GET shows it, in the PUT's shorter shape: text as {body}, references as {id}."""
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        return {"items": [{"id": e["id"]} if isinstance(e, dict) and e.get("id") else e for e in value["items"]]}
    if isinstance(value, dict) and value.get("label") == "Text":
        return {"body": value.get("body")}
    return value


def edit_body(article: dict, locale: str, changes: dict) -> str:
    """A content_items PUT of one locale: Prepr replaces the whole locale, so the body carries every
    field the article has there, `changes` applied. JSON that is safe inside shell single quotes."""
    fields = {name: _write_shape(value) for name, value in (article["items"].get(locale) or {}).items()}
    body = {"locales": [locale], "items": {locale: {**fields, **changes}}}
    return json.dumps(body, ensure_ascii=True).replace("'", "\\u0027")


def _event_file(data_dir: Path, item: str) -> str:
    """A delivery for the demo article, written where the tour can point at it."""
    path = data_dir / "demo-event.json"
    path.write_text(json.dumps({"id": f"demo-{int(time.time())}", "event": "content_item.changed",
                                "created_on": int(time.time()), "payload": {"id": item}}, indent=2))
    return rel(path)


def tour(web: str, sandbox: str, token: str, admin: str, secret: str, broker: str, data_dir: Path,
         rules: str, workers: int, event_file: Path) -> str:
    article, editor = _demo_article(sandbox, token)
    item, cmd = article["id"], command()
    body = edit_body(article, "en-GB", {"intro": {"body": INTRO}})
    auth = f"-H 'Authorization: Bearer {token}'"
    return f"""
prepr-automation is running
  web      {web}   (POST /webhooks/prepr, GET /health)
  console  {web}/console   sign in with the admin token {admin}
  sandbox  {sandbox}   (a local Prepr with demo content; token {token})
  worker   {workers} processes, rules from {rel(rules)}; broker {broker}

Try it (in another terminal, from this folder; commands here use this set-up, see {rel(data_dir / 'dev.json')}):
  1. Change a demo article as an editor would (a PUT replaces the whole en-GB locale, so it carries
     every field, the intro changed); the sandbox sends Prepr's webhook to the web:
     curl -s -o /dev/null -X PUT {sandbox}/content_items/{item} {auth} -H 'X-Sandbox-User: {editor}' -H 'Content-Type: application/json' -d '{body}'
  2. Watch the worker line "event … publication {item[:8]}…: done" above; then see the tags:
     curl -s '{sandbox}/content_items/{item}?fields=items' {auth}
  3. What happened and why (id from the worker line):
     {cmd} trace EVENT_ID          or  curl -H 'Authorization: Bearer {admin}' {web}/events/EVENT_ID
  4. Dry-run the rules against the article, without writing:
     {cmd} explain {_event_file(data_dir, item)} --fetch
  5. Send a signed event yourself (a demo article's), a new delivery each time:
     {cmd} send --new-id {rel(event_file)}
     Without --new-id the file's own id is sent, and once it was accepted (also before a restart)
     the answer is "duplicate", as Prepr's resends are:  {curl_line(web, event_file, secret)}

Edit the rules under {rel(rules)} (check them with `{cmd} validate`); web and worker pick up changes.
Ctrl-C stops everything.
"""
