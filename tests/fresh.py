"""A new user's starting points, built offline: a clean copy of the project (what a fresh clone or a
platform's build holds) and a fresh venv whose packages can only be the ones named, never this
checkout (no PYTHONPATH, no editable install in sight)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import ROOT


def clean_copy(target: Path) -> Path:
    """The files a fresh clone has (tracked or new, not ignored), as they are in this checkout: a
    leftover *.egg-info here lists files of its own that setuptools would add to a wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def without_source(**extra: str) -> dict[str, str]:
    """The environment minus PYTHONPATH: a source tree on the path would hide what is missing."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


def fresh_venv(venv: Path) -> Path:
    """A venv whose site-packages reaches the test run's installed dependencies through a .pth line
    (a .pth in that folder is not processed, so the editable install of this checkout stays out of
    sight). Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True, env=without_source()).stdout.strip()
    Path(site, "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def install_requirements(python: Path, requirements: Path) -> str:
    """`pip install -r requirements` into the venv, offline: every pin must already be satisfied by the
    reachable packages (pip says so, and fails on any it would have to download). Then the console
    scripts of those distributions are written into the venv's bin/, as pip writes them (a script's
    sys.path[0] is bin/, not the current folder: what the Procfile's commands meet on a platform)."""
    answer = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                             "-r", str(requirements)], capture_output=True, text=True, timeout=300,
                            env=without_source(), cwd=requirements.parent)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    for line in requirements.read_text().splitlines():
        if not line.strip() or line.startswith((" ", "#", "-")):
            continue
        for entry in metadata.distribution(Requirement(line).name).entry_points.select(group="console_scripts"):
            module, _, attr = entry.value.partition(":")
            script = python.parent / entry.name
            script.write_text(f"#!{python}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
                              f"sys.argv[0] = {entry.name!r}\nsys.exit({attr}())\n")
            script.chmod(0o755)
    return answer.stdout
