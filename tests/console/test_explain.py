"""*Explain against the current rules* evaluates as the worker does (webhooks/console/explain.py): the
stored envelope plus the item fetched from Prepr now. Every shipped rule (rules/) explains without
an error against the demo content, for every event it listens to, over real HTTP to the sandbox;
on the payload alone (what the page used to do) the rules that read the item never fire."""
from __future__ import annotations

import time
from pathlib import Path

import redis

from automation import evaluate, load_rules
from automation.events import VERBS
from prepr_automation.settings import Settings
from tests.conftest import ROOT, Sandbox
from webhooks.console.explain import explain

FAMILY = {"publication": "content_item", "asset": "asset"}


def _deliveries(sandbox: Sandbox) -> list[dict]:
    """A delivery as Prepr sends it (the id in the payload, little else) for every demo item and event."""
    client = sandbox.client()
    ids = {"publication": [item["id"] for item in client.list_items()],
           "asset": [asset["id"] for asset in client.request("GET", "/assets")["items"]]}
    return [{"id": f"explain-{kind}-{verb}-{n}", "event": f"{FAMILY[kind]}.{verb}", "created_on": int(time.time()),
             "payload": {"id": item}}
            for kind, verbs in VERBS.items() if kind in FAMILY for verb in sorted(verbs) for n, item in enumerate(ids[kind])]


def test_every_shipped_rule_explains_without_errors_against_the_demo_content(
        sandbox: Sandbox, redis_client: redis.Redis, tmp_path: Path) -> None:
    rules = load_rules(ROOT / "rules")
    settings = Settings(access_token=sandbox.token, api_url=sandbox.url, tracking_url=sandbox.url,
                        rate_limit="1000/second")
    considered, fired, fired_alone = set(), set(), set()
    for envelope in _deliveries(sandbox):
        explained = explain(rules, envelope, settings, redis_client)
        assert "error" not in explained, explained
        assert explained["source"] in ("fetched", "payload")
        for rule in explained["evaluation"]["rules"]:
            considered.add(rule["rule_id"])
            assert not rule["errors"], (envelope["event"], envelope["payload"], rule)
            if rule["status"] == "fired":
                fired.add(rule["rule_id"])
        alone = evaluate(rules, envelope, None, channels=None, now=time.time()).to_json()
        fired_alone |= {rule["rule_id"] for rule in alone["rules"] if rule["status"] == "fired"}
    assert considered == {rule.id for rule in rules.enabled}, "every enabled shipped rule was explained"
    assert {"tag-football-as-sport", "auto-tag-sports", "track-publication"} <= fired, fired
    assert "tag-football-as-sport" in fired - fired_alone  # on the payload alone (no model, no text) it never fires
    calls = [call for call in sandbox.requests() if call["method"] != "GET"]
    assert not calls, calls  # explain never writes


def test_without_a_token_the_page_says_it_evaluated_the_payload_alone(redis_client: redis.Redis) -> None:
    rules = load_rules(ROOT / "rules")
    envelope = {"id": "e", "event": "content_item.changed", "payload": {"id": "p1"}}
    explained = explain(rules, envelope, Settings(), redis_client)
    assert explained["source"] == "no token" and explained["fetch"]["path"] == "/publications/p1"
