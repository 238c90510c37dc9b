"""Malformed and hostile rule files: each is errors at file:line:col, found in bounded time and
memory; dropped into a live folder, the rule set in force stays as it was."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from automation import RuleSetError, evaluate, load_rules
from automation.live import LiveRuleSet

HEAD = "version: 1\nrules:\n  - id: r\n    on: content_item.changed\n"
BOMB = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdef", "bcdefg"))
HOSTILE: dict[str, tuple[bytes, str, str]] = {  # name: (file, expected position, message part)
    "alias bomb": (('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + BOMB
                    + "version: 1\nrules: *g\n").encode(), "6:8", "aliases expand to more than"),
    "nesting": (("version: 1\nrules: " + "[" * 600 + "]" * 600).encode(), "2:47", "nested deeper"),
    "long number": (("version: 1\nrules: [" + "1" * 5000 + "]").encode(), "2:9", "plain value longer"),
    "control character": (b"version: 1\nrules:\n  - id: r\x01\n", "3:10", "special characters"),
    "invalid utf-8": (b"version: 1\nrules:\n  - id: r\xff\xfe\n", "3:10", "not UTF-8"),
    "utf-16": ("version: 1\nrules: []\n".encode("utf-16"), "1:1", "not UTF-8"),
    "regex size": ((HEAD + "    when: {slug: {matches: 'a{4294967296}'}}\n    do: [{add_tags: [x]}]\n").encode(),
                   "5:28", "repetition count over 1000"),
    "long keyword": ((HEAD + "    do: [{auto_tag: {vocabulary: {x: [" + "a" * 1_000_000 + "]}}}]\n").encode(),
                     "5:38", "keyword longer than 200"),
    "no on": (b"version: 1\nrules:\n  - id: r\n    do: [{add_tags: [x]}]\n", "3:5",
              "rules[0].on: missing data"),
    "huge file": (b"version: 1\n" + b"#" * (2 * 1024 * 1024 + 1), "1:1", "larger than"),
    "long template": ((HEAD + "    do: [{update: {title: '{{ 1 " + "+ 1 " * 3000 + "}}'}}]\n").encode(),
                      "5:27", "template longer than"),
}
ERROR_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): .+")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_is_an_error_at_its_place(tmp_path: Path, name: str) -> None:
    data, where, part = HOSTILE[name]
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(RuleSetError) as raised:
        load_rules(path)
    lines = [str(e) for e in raised.value.errors]
    assert all(ERROR_LINE.match(line) for line in lines), lines
    assert any(line.startswith(f"{path}:{where}: ") and part in line for line in lines), lines


@pytest.mark.parametrize("template, error", [("{{ 10**100000 }}", "SecurityError"),
                                             ("{{ 'a' * 10**10 }}", "template output exceeds 102400 bytes"),
                                             ("{{ '%099999999d' % 1 }}", "template output exceeds 102400 bytes")])
def test_templates_are_not_folded_at_load_and_are_bounded_when_rendered(tmp_path: Path, template: str,
                                                                         error: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + f'    do: [{{update: {{title: "{template}"}}}}]\n')
    result = evaluate(load_rules(path), {"event": "content_item.changed", "payload": {"id": "1"}})
    assert not result.plan and result.rules[0].status == "error"
    assert error in result.rules[0].errors[0]


def test_templates_cannot_mutate_what_later_rules_see(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("version: 1\nrules:\n"
                    "  - id: wipe\n    on: content_item.changed\n"
                    "    do: [{update: {a: '{{ item.clear() }}{{ event.payload.clear() }}'}}]\n"
                    "  - id: tag\n    on: content_item.changed\n    when: {model: {eq: Post}}\n"
                    "    do: [{add_tags: ['{{ item.model.body }}']}]\n")
    item = {"id": "1", "model": {"body": "Post"}, "locales": ["en-GB"], "items": {"en-GB": {"tags": []}}}
    envelope = {"event": "content_item.changed", "payload": {"id": "1"}}
    result = evaluate(load_rules(path), envelope, item)
    assert result.rules[0].status == "error" and "unsafe" in result.rules[0].errors[0]
    assert result.fired == ("tag",)
    assert item["model"] == {"body": "Post"} and envelope["payload"] == {"id": "1"}
    assert result.plan[0].body["items"]["en-GB"]["tags"] == {"items": [{"body": "Post"}]}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_edit_leaves_the_live_set_in_force(tmp_path: Path, name: str) -> None:
    good = HEAD + "    do: [{add_tags: [x]}]\n"
    (tmp_path / "a.yaml").write_text(good)
    live = LiveRuleSet(str(tmp_path), check_every=0)
    before = live.current()
    assert before is not None and live.listens_to("content_item.changed")
    (tmp_path / "b.yaml").write_bytes(HOSTILE[name][0])
    assert live.current() is before and live.listens_to("content_item.changed")
    assert not live.listens_to("asset.created")
    status = live.status
    assert status["loaded"] and status["rules"] == 1 and status["errors"] >= 1
    assert ERROR_LINE.match(status["first_error"]), status["first_error"]


def test_the_receiver_answers_the_same_after_a_hostile_edit(tmp_path: Path, redis_url: str) -> None:
    """The web process's answers (queued / ignored, /health) stay those of the last good set."""
    import json

    import redis

    from prepr_automation.settings import Settings
    from webhooks import create_app
    from webhooks.intake import Intake
    from webhooks.signature import sign

    key = "hostile-edit-key"
    (tmp_path / "a.yaml").write_text(HEAD + "    do: [{add_tags: [x]}]\n")
    live = LiveRuleSet(str(tmp_path), check_every=0)
    settings = Settings(webhook_secrets=(key,), broker_url=redis_url, rules_path=str(tmp_path))
    intake = Intake(redis.Redis.from_url(redis_url), settings.dedupe_ttl, settings.trace_ttl)
    client = create_app(settings, listens=live.listens_to, intake=intake).test_client()

    def answers(round_: str) -> list:
        out = []
        for n, event in enumerate(("content_item.changed", "asset.created")):
            body = json.dumps({"id": f"hostile-{round_}-{n}", "event": event, "payload": {"id": "p1"}}).encode()
            response = client.post("/webhooks/prepr", data=body, content_type="application/json",
                                   headers={"Prepr-Signature": sign(body, key)})
            out.append((response.status_code, response.get_json()["status"]))
        return out

    assert answers("before") == [(202, "queued"), (202, "ignored")]
    for name, (data, _, _) in HOSTILE.items():
        (tmp_path / "b.yaml").write_bytes(data)
        assert answers(name.replace(" ", "-")) == [(202, "queued"), (202, "ignored")], name
        assert client.get("/health").status_code == 200
        assert live.status["errors"] >= 1 and live.status["rules"] == 1


def test_a_channel_list_entry_without_an_id_is_skipped(tmp_path: Path) -> None:
    """Found by the rule-file fuzz: Prepr's channel list is data too."""
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + "    do: [{assign_channels: [app]}]\n")
    envelope = {"event": "content_item.changed", "payload": {"id": "p1", "channels": []}}
    ruleset = load_rules(path)
    result = evaluate(ruleset, envelope, channels=[{"slug": "app"}, {"id": "ch-app", "slug": "app"}])
    assert result.plan[0].body == {"channels": [{"id": "ch-app"}]}
    result = evaluate(ruleset, envelope, channels=[{"slug": "app"}, "junk"])
    assert result.rules[0].status == "error" and "unknown channel 'app'" in result.rules[0].errors[0]


@pytest.mark.parametrize("name", ["x" * 5000, "a\\u0000b", "/dev/zero", "."])
def test_a_vocabulary_file_that_cannot_be_read_is_not_found(tmp_path: Path, name: str) -> None:
    """Found by the rule-file fuzz: a name too long for the file system raised OSError."""
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + f'    do: [{{auto_tag: {{vocabulary_file: "{name}"}}}}]\n')
    with pytest.raises(RuleSetError) as raised:
        load_rules(path)
    assert [e.message[:26] for e in raised.value.errors] == ["vocabulary file not found:"]
