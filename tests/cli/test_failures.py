"""Every failure of a command is one line on stderr and a non-zero exit, never a traceback: Prepr
unreachable, Redis unreachable, a receiver that is not running. Real processes, real sockets (a port
nothing listens on)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, free_port
from tests.test_dev import clean_env

EVENT = ROOT / "examples" / "content_item.changed.json"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "prepr-automation"), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=clean_env("PA_CLI_TEST=1", **{"RULES_PATH": str(ROOT / "rules"), **env}))


@pytest.mark.parametrize("args, env, says", [
    (("explain", str(EVENT), "--fetch"), {"PREPR_ACCESS_TOKEN": "t", "PREPR_API_URL": "http://127.0.0.1:{port}"},
     "error: Prepr is unreachable (GET /"),
    (("trace", "some-event"), {"REDIS_URL": "redis://127.0.0.1:{port}/0"}, "error: the Redis store is unavailable"),
    (("dead-letters", "list"), {"REDIS_URL": "redis://127.0.0.1:{port}/0"}, "error: the Redis store is unavailable"),
    (("send", str(EVENT), "--secret", "k", "--url", "http://127.0.0.1:{port}"), {}, "error: cannot reach"),
    (("explain", str(EVENT)), {"RULES_PATH": "/nonexistent/rules"}, "no such rule file or folder"),
])
def test_a_failing_command_says_so_in_one_line(tmp_path: Path, args: tuple[str, ...], env: dict[str, str],
                                               says: str) -> None:
    port = str(free_port())  # nothing listens there
    result = _run(tmp_path, *(a.replace("{port}", port) for a in args),
                  **{k: v.replace("{port}", port) for k, v in env.items()})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and says in lines[0], result.stderr
