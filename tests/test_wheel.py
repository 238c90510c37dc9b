"""Installed from its wheel (not editable, no source tree), `dev` and the example files work from an
empty folder. The wheel is built here (offline: no build isolation) and installed with --no-deps into
a fresh venv; the dependencies already installed for the tests are made reachable by a .pth line
that appends their site-packages (a .pth there is not processed, so this checkout's editable install
stays out of sight and the project can only come from the wheel)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, Processes, free_port, no_survivors
from tests.test_dev import READY, clean_env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(base / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((base / "dist").glob("prepr_automation-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def test_the_wheel_carries_everything_dev_needs(installed: Path, tmp_path: Path, processes: Processes) -> None:
    python, cmd = installed / "bin" / "python", installed / "bin" / "prepr-automation"
    where = subprocess.run([str(python), "-c", "import cli, prepr_automation, sandbox; "
                            "print(cli.__file__, prepr_automation.__file__, sandbox.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(installed)) for path in where), where  # the wheel's, not this checkout's

    marker = f"PA_DEV_TEST={uuid.uuid4()}"
    web, sandbox = free_port(), free_port()
    env = clean_env(marker, PORT=str(web), SANDBOX_PORT=str(sandbox))
    empty = subprocess.run([str(cmd), "validate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert empty.returncode == 1 and "no such rule file or folder" in empty.stdout + empty.stderr

    log = tmp_path / "dev.log"
    proc = subprocess.Popen([str(cmd), "dev"], cwd=tmp_path, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    processes.procs.append(proc)
    deadline = time.monotonic() + 90
    while READY not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    text = log.read_text()
    assert "Traceback" not in text and "copied the example rules" in text
    assert {p.name for p in (tmp_path / "rules").iterdir()} >= {"tagging.yaml", "00-guards.yaml", "vocab"}
    sent = subprocess.run([str(cmd), "send", "examples/content_item.changed.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0 and sent.stdout.startswith("202 "), sent.stdout + sent.stderr

    valid = subprocess.run([str(cmd), "validate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(40) == 0
    no_survivors(marker)
