"""`prepr-automation doctor` against the real sandbox (over HTTP), a real Redis and a real worker."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import redis

from prepr_automation import dialect
from prepr_automation.settings import load_settings
from tests.conftest import BIN, ROOT, SANDBOX_USER_ID, Processes, Sandbox, free_port
from tests.tasks.conftest import Service

KEY = "62d77be4-d41d-4878-bffc-ed4a047a9101"
OWN = ("PREPR_", "REDIS_URL", "CELERY_BROKER_URL", "RULES_PATH", "DATA_DIR")  # only what each test sets
TAG_RULE = """
version: 1
rules:
  - id: tag-everything
    on: content_item.changed
    do: [{add_tags: [doctor-checked]}]
tests:
  - name: tags
    event: {event: content_item.changed, payload: {id: p1, locales: [en-GB], items: {en-GB: {}}}}
    expect: {fired: [tag-everything]}
"""
BULK_WEBHOOKS = """
version: 1
rules:
  - id: resend-recipes
    on: content_item.changed
    do:
      - trigger_webhooks:
          filter: {model: {eq: Recipe}}
          event: content_item.changed
"""


class Doctor:
    def __init__(self, sandbox: Sandbox, redis_url: str, tmp: Path) -> None:
        self.sandbox, self.redis_url, self.tmp = sandbox, redis_url, tmp
        self.rules = tmp / "rules.yaml"
        self.rules.write_text(TAG_RULE)

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN)}
        return {**clean, **self.sandbox.env, "REDIS_URL": self.redis_url, "PREPR_WEBHOOK_SECRETS": KEY,
                "RULES_PATH": str(self.rules), "DATA_DIR": str(self.tmp / "var"), **extra}

    def run(self, **extra: str) -> tuple[int, list[str], str]:
        done = subprocess.run([str(BIN / "prepr-automation"), "doctor"], env=self.env(**extra), capture_output=True,
                              text=True, timeout=90, cwd=str(ROOT))
        assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
        return done.returncode, done.stdout.splitlines(), done.stdout + done.stderr


@pytest.fixture
def doctor(sandbox: Sandbox, redis_url: str, tmp_path: Path) -> Doctor:
    return Doctor(sandbox, redis_url, tmp_path)


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("✗")]


@pytest.mark.parametrize("api", ["auto", "content_items", "publications"])
def test_a_healthy_deployment_is_all_ticks_and_exit_0(doctor: Doctor, api: str) -> None:
    code, lines, out = doctor.run(PREPR_API=api)
    assert code == 0, out
    assert lines and all(line.startswith("✓ ") for line in lines), out
    assert any("the token is accepted" in line for line in lines)
    spoken = "content_items" if api == "auto" else api  # the sandbox serves both; auto finds today's first
    assert any(f"in the {spoken} dialect" in line or f"speaks the {spoken} dialect" in line for line in lines), out
    assert any("cannot be checked yet" in line for line in lines), out  # no write by the worker yet
    assert any("maxmemory-policy is noeviction" in line for line in lines)
    assert any("the rule tests pass (1)" in line for line in lines)


def test_doctor_writes_nothing_to_the_store(doctor: Doctor, redis_client: redis.Redis) -> None:
    before = sorted(redis_client.keys("*"))
    code, _, out = doctor.run(PREPR_API="auto")
    assert code == 0, out
    assert sorted(redis_client.keys("*")) == before
    settings = load_settings(doctor.env(PREPR_API="auto"))
    assert dialect.known(settings, redis_client)[0] is None  # detected, not remembered


def test_a_wrong_token_is_refused_never_a_dialect(doctor: Doctor) -> None:
    for api in ("auto", "content_items"):
        code, lines, out = doctor.run(PREPR_ACCESS_TOKEN="not-the-token", PREPR_API=api)
        assert code == 1
        bad = failures(lines)
        assert len(bad) == 1 and bad[0].startswith("✗ the token is refused by Prepr") and "(401)" in bad[0], out
        assert " — set PREPR_ACCESS_TOKEN" in bad[0]
        assert not any("Prepr speaks" in line or "Prepr answers" in line for line in lines), out
        assert "not-the-token" not in out


def test_the_user_id_is_checked_against_the_newest_write(processes: Processes, redis_url: str, sandbox: Sandbox,
                                                          tmp_path: Path, doctor: Doctor) -> None:
    service = Service(processes, redis_url, sandbox, tmp_path)
    service.rules(TAG_RULE)
    service.start_worker(PREPR_API="content_items")
    item = next(sandbox.client().list_items(limit=1))
    trace = service.wait(service.send("content_item.changed", item["id"]))
    assert trace["run"]["outcome"].startswith("done"), trace
    doctor.rules = service.rules_path

    code, lines, out = doctor.run(PREPR_API="content_items")
    assert code == 0, out
    assert any(line.startswith(f"✓ the token is bound to user {SANDBOX_USER_ID}, and PREPR_AUTOMATION_USER_ID "
                               f"matches (updated_by of item {item['id']}") for line in lines), out

    code, lines, out = doctor.run(PREPR_API="content_items", PREPR_AUTOMATION_USER_ID="someone-else")
    assert code == 1
    assert failures(lines) == [f"✗ PREPR_AUTOMATION_USER_ID is someone-else, but the token writes as {SANDBOX_USER_ID} "
                               f"(updated_by of item {item['id']}, the worker's newest write) — set "
                               f"PREPR_AUTOMATION_USER_ID={SANDBOX_USER_ID}"], out

    code, lines, out = doctor.run(PREPR_API="content_items", PREPR_AUTOMATION_USER_ID="")
    assert code == 1
    assert [line for line in failures(lines) if line.startswith("✗ PREPR_AUTOMATION_USER_ID is not set")
            and f"the token writes as {SANDBOX_USER_ID}" in line] == failures(lines), out


@pytest.mark.parametrize("secrets, why", [
    ("ab" * 32, "is the placeholder app.json generated"),
    ("not-a-webhook-id", "does not look like a Prepr webhook id"),
    (f"{KEY},{'0f' * 32}", "key 2 of 2 is the placeholder"),
])
def test_signing_keys_must_be_webhook_ids(doctor: Doctor, secrets: str, why: str) -> None:
    code, lines, out = doctor.run(PREPR_API="content_items", PREPR_WEBHOOK_SECRETS=secrets)
    assert code == 1
    bad = failures(lines)
    assert len(bad) == 1 and why in bad[0] and "set PREPR_WEBHOOK_SECRETS to its id" in bad[0], out
    assert all(key not in out for key in secrets.split(","))  # never printed


def test_unreachable_redis_and_prepr_are_one_line_each(doctor: Doctor) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, lines, out = doctor.run(REDIS_URL=f"redis://:hunter2secret@127.0.0.1:{free_port()}/0", PREPR_API_URL=dead,
                                  PREPR_API="content_items")
    assert code == 1
    bad = failures(lines)
    assert len(bad) == 2, out
    assert bad[0].startswith(f"✗ Prepr at {dead} does not answer") and "check PREPR_API_URL" in bad[0]
    assert bad[1].startswith("✗ the Redis at 127.0.0.1:") and "is not reachable" in bad[1]
    assert "hunter2secret" not in out


def test_trigger_webhooks_in_content_items_names_the_rule_at_file_line(doctor: Doctor) -> None:
    doctor.rules.write_text(BULK_WEBHOOKS)
    code, lines, out = doctor.run(PREPR_API="content_items")
    assert code == 1
    bad = failures(lines)
    assert len(bad) == 1, out
    assert bad[0].startswith(f"✗ {doctor.rules}:7:9: rules[0].do[0].trigger_webhooks: ") and "trigger_webhooks has no equivalent" in bad[0], out
    code, lines, out = doctor.run(PREPR_API="publications")  # the seeds' API has bulk webhooks
    assert code == 0, out


def test_failing_rule_tests_are_a_cross(doctor: Doctor) -> None:
    code, lines, out = doctor.run(PREPR_API="content_items", RULES_PATH=str(ROOT / "tests/rules/tests/failing.yaml"))
    assert code == 1
    assert any(line.startswith("✗ ") and "rule test(s) fail" in line and "prepr-automation test" in line
               for line in lines), out


@pytest.fixture
def config(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The test server's own settings, changed by a test and put back after it."""
    names = ("maxmemory-policy", "maxmemory", "maxclients")
    saved = {name: redis_client.config_get(name)[name] for name in names}
    yield redis_client
    for name, value in saved.items():
        redis_client.config_set(name, value)


def test_an_evicting_or_full_redis_is_a_cross(doctor: Doctor, config: redis.Redis) -> None:
    config.config_set("maxmemory-policy", "allkeys-lru")
    code, lines, out = doctor.run(PREPR_API="content_items")
    assert code == 1
    assert failures(lines) == [line for line in lines if "maxmemory-policy is allkeys-lru" in line], out
    config.config_set("maxmemory-policy", "noeviction")

    used = int(config.info("memory")["used_memory"])
    config.config_set("maxmemory", str(int(used * 1.05)))
    code, lines, out = doctor.run(PREPR_API="content_items")
    config.config_set("maxmemory", "0")
    assert code == 1
    assert len(failures(lines)) == 1 and failures(lines)[0].startswith("✗ memory is "), out
    assert " full: " in failures(lines)[0] and " of " in failures(lines)[0]

    connected = int(config.info("clients")["connected_clients"])
    config.config_set("maxclients", str(connected + 1))  # doctor's own connection fills it
    code, lines, out = doctor.run(PREPR_API="content_items")
    config.config_set("maxclients", "10000")
    assert code == 1
    assert len(failures(lines)) == 1 and failures(lines)[0].startswith(f"✗ connections: {connected + 1} of its "
                                                                      f"maxclients {connected + 1}"), out


def test_a_remembered_dialect_that_prepr_no_longer_speaks_is_a_cross(doctor: Doctor,
                                                                     redis_client: redis.Redis) -> None:
    settings = load_settings(doctor.env(PREPR_API="auto"))
    assert dialect.resolve(settings, redis_client, lambda: "publications") == "publications"  # as a worker keeps it
    code, lines, out = doctor.run(PREPR_API="auto")
    assert code == 1
    assert failures(lines) == ["✗ Prepr speaks the content_items dialect, but the store remembers publications "
                               "(PREPR_API=auto) — set PREPR_API=content_items, or wait: the remembered answer "
                               "expires within a day"], out


def test_channel_rules_in_an_environment_without_channels_are_a_cross(doctor: Doctor, sandbox: Sandbox) -> None:
    doctor.rules.write_text(TAG_RULE.replace("do: [{add_tags: [doctor-checked]}]",
                                             "do: [{assign_channels: [web]}]").split("tests:")[0])
    code, lines, out = doctor.run(PREPR_API="content_items")
    assert code == 0, out  # the demo environment has channels
    sandbox.fault("/channels", 404, method="GET", times=None)  # as today's Prepr without legacy channels
    code, lines, out = doctor.run(PREPR_API="content_items")
    assert code == 1
    assert failures(lines) == [f"✗ rule tag-everything ({doctor.rules}:4) uses channels, but the environment has "
                               "none (channels are legacy in today's Prepr) — disable the rule (`disabled: why`) "
                               "or create the channels in Prepr"], out


def test_doctor_passes_in_the_folder_of_dev_after_its_first_write(processes: Processes, tmp_path: Path) -> None:
    """`make run` as a newcomer: the embedded Redis (no REDIS_URL), dev's set-up, the shipped rules."""
    import re
    import time

    import requests

    from tests.test_dev import _cli, _start, _tags

    marker = f"PA_DOCTOR_TEST={os.getpid()}-{time.time()}"
    proc, log, sandbox, _ = _start(processes, tmp_path, "dev", marker)
    step1 = next(line.strip() for line in log.splitlines() if line.strip().startswith("curl -s -o /dev/null -X PUT"))
    found = re.search(r"/(publications|content_items)/([0-9a-f-]{36})", step1)
    collection, item = found.group(1), found.group(2)
    token = re.search(r"Authorization: Bearer (\S+)'", step1).group(1)
    editor = re.search(r"X-Sandbox-User: (\S+)'", step1).group(1)
    body = re.search(r"-d '(\{.*\})'", step1).group(1)
    assert requests.put(f"{sandbox}/{collection}/{item}", data=body, timeout=5, headers={
        "Authorization": f"Bearer {token}", "X-Sandbox-User": editor, "Content-Type": "application/json"}).ok
    deadline = time.monotonic() + 60
    while "sport" not in _tags(sandbox, token, item):
        assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()[-4000:]
        time.sleep(0.2)
    done = _cli(tmp_path, marker, "doctor")
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and all(line.startswith("✓ ") for line in lines), done.stdout + done.stderr
    assert any(line.startswith("✓ the Redis at ") and "redis.sock answers" in line for line in lines)
    user = json.loads((tmp_path / "var" / "dev.json").read_text())["PREPR_AUTOMATION_USER_ID"]
    assert any(line.startswith(f"✓ the token is bound to user {user}, and PREPR_AUTOMATION_USER_ID matches")
               for line in lines), done.stdout
