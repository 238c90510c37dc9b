"""The live rule set follows file edits and never drops to a half-loaded or empty set."""
from __future__ import annotations

import time
from pathlib import Path

from automation.live import LiveRuleSet

GOOD = "version: 1\nrules:\n  - id: a\n    on: content_item.changed\n    do: [{add_tags: [x]}]\n"
MORE = GOOD + "  - id: b\n    on: asset.changed\n    do: [{add_tags: [y]}]\n"
BROKEN = GOOD + "  - id: c\n    on: asset.changed\n    do: [{no_such_action: 1}]\n"


def test_follows_edits_and_keeps_the_last_good_set(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    live = LiveRuleSet(str(path), check_every=0)
    assert live.listens_to("publication.changed") and not live.listens_to("asset.changed")

    path.write_text(MORE)
    assert live.listens_to("asset.changed")
    assert live.status == {"path": str(path), "loaded": True, "files": 1, "rules": 2, "enabled": 2}

    path.write_text(BROKEN)
    assert [r.id for r in live.current().rules] == ["a", "b"]  # the last good set stays in force
    status = live.status
    assert status["errors"] == 1 and "no_such_action" in status["first_error"] and status["rules"] == 2
    failed_at, loaded_at = live.failed_at, live.loaded_at  # the failed reload's time, beside the last good one
    assert failed_at is not None and loaded_at is not None and failed_at >= loaded_at
    time.sleep(0.01)
    live.current()  # the same broken files read again: still the time the edit was first read
    assert live.failed_at == failed_at
    path.write_text(MORE)
    live.current()
    assert live.failed_at is None and not live.errors and live.loaded_at > failed_at


def test_without_any_valid_set_every_event_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BROKEN)
    live = LiveRuleSet(str(path), check_every=0)
    assert live.current() is None
    assert live.listens_to("anything.at_all")
    assert live.status["loaded"] is False and live.status["errors"] == 1


def test_checks_files_only_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    live = LiveRuleSet(str(path), check_every=3600)
    assert not live.listens_to("asset.changed")
    path.write_text(MORE)
    assert not live.listens_to("asset.changed")  # not re-read before the interval
