"""What a Heroku-style platform relies on: Procfile, app.json and settings agree; the pinned
requirements are in step with setup.cfg; honcho runs web + worker; TLS Redis works."""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from prepr_automation import store
from prepr_automation.settings import load_settings
from tests.conftest import BIN, ROOT, Processes, free_port, wait_http
from tests.fresh import clean_copy, without_source
from tests.webhooks.test_processes import KEY, post, start_web

SETTINGS_SOURCE = (ROOT / "prepr_automation" / "settings.py").read_text()
ENV_NAMES = set(re.findall(r'_parse\(env, "([A-Z_]+)"', SETTINGS_SOURCE))
PROCESS_ENV = {"WEB_CONCURRENCY", "WEB_CONNECTIONS", "WORKER_CONCURRENCY"}  # read by the Procfile, not settings


def procfile(name: str = "Procfile") -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return {key: command.strip() for key, command in
            (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))}


def test_procfile_has_the_three_process_types() -> None:
    processes = procfile()
    assert set(processes) == {"web", "worker", "release"}
    assert processes["web"].startswith('gunicorn "webhooks:create_app()"') and "$PORT" in processes["web"]
    # `python -m`: the app folder on sys.path for the whole run (the celery script adds it only while it
    # finds the app), so the worker imports the project uninstalled on any platform (tests/test_platform.py)
    assert processes["worker"].startswith("python -m celery -A tasks worker") and "celery,bulk" in processes["worker"]
    assert processes["release"] == "python -m cli validate && python -m cli test"  # the platform runs the source tree, uninstalled


def test_procfile_dev_is_web_and_worker_as_deployed_without_release() -> None:
    """`honcho start` / `heroku local` stop everything when `release` exits: Procfile.dev leaves it out."""
    deployed = procfile()
    del deployed["release"]
    assert procfile("Procfile.dev") == deployed


def test_app_json_describes_every_setting_and_nothing_else() -> None:
    app = json.loads((ROOT / "app.json").read_text())
    described = set(app["env"])
    assert ENV_NAMES - {"CELERY_BROKER_URL", "PORT", "DATA_DIR"} <= described, ENV_NAMES - described
    assert described <= ENV_NAMES | PROCESS_ENV, described - ENV_NAMES - PROCESS_ENV
    assert all(spec.get("description") for spec in app["env"].values())
    required = {name for name, spec in app["env"].items() if spec.get("required", True)}  # Heroku's default
    # a one-click deploy asks only for what exists before the app does: the signing key (the id of
    # the webhook that points at the app) is set afterwards; until then the web answers POSTs 503 (SPEC §5)
    assert {name for name in required if "generator" not in app["env"][name]} == {"PREPR_ACCESS_TOKEN"}
    assert "PREPR_WEBHOOK_SECRETS" not in required and "generator" not in app["env"]["PREPR_WEBHOOK_SECRETS"]
    assert set(app["formation"]) == {"web", "worker"}
    assert any("redis" in addon["plan"] for addon in app["addons"])
    for name, spec in app["env"].items():  # every default in app.json parses as the service reads it
        if "value" in spec and name in ENV_NAMES:
            load_settings({name: spec["value"]})


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_NAMES | PROCESS_ENV if f"`{name}`" not in readme]
    assert not missing


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _declared(*extras: str) -> list[Requirement]:
    options = _setup_cfg()
    lines = options["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += options["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


@pytest.mark.parametrize("pinned, extras", [("requirements.txt", ()),
                                            ("requirements-dev.txt", ("test", "bench", "dev"))])
def test_requirements_pin_every_dependency_inside_its_range(pinned: str, extras: tuple[str, ...]) -> None:
    """In step with setup.cfg: `make requirements` (pip-compile) was run after the last change there."""
    pins = _pins(pinned)
    for requirement in _declared(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in {pinned}: run make requirements"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"{pinned} pins {name}=={pins[name]}, outside {requirement.specifier}: run make requirements"


def test_dev_pins_are_the_runtime_pins() -> None:
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_floors_are_what_ci_runs() -> None:
    """The lower bounds are the pinned versions that every test run installs, and the Python floor is
    the version the pins were resolved for and the platform runs (.python-version)."""
    pins = _pins("requirements.txt")
    for requirement in _declared():
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert [Version(v) for v in floors] == [pins[canonicalize_name(requirement.name)]], \
            f"{requirement}: raise the floor to the pinned {pins[canonicalize_name(requirement.name)]}"
    python = SpecifierSet(_setup_cfg()["options"]["python_requires"])
    (floor,) = [spec.version for spec in python if spec.operator == ">="]
    assert (ROOT / ".python-version").read_text().strip() == floor
    for pinned in ("requirements.txt", "requirements-dev.txt"):
        assert f"autogenerated by pip-compile with Python {floor}\n" in (ROOT / pinned).read_text()
    assert f"Python {floor}" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_honcho_runs_web_and_worker_from_procfile_dev(processes: Processes, redis_url: str, tmp_path: Path) -> None:
    """As the README says: in the project's folder, `.env` made from `.env.example`, the venv active
    (its bin first on PATH), `honcho -f Procfile.dev start`; Ctrl-C stops both, no traceback."""
    folder = clean_copy(tmp_path / "app")
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()  # it holds secrets
    values = {"REDIS_URL": redis_url, "PREPR_WEBHOOK_SECRETS": KEY, "PREPR_ACCESS_TOKEN": "t",
              "PREPR_API_URL": "http://127.0.0.1:9", "PORT": str(free_port()), "WORKER_CONCURRENCY": "1"}
    lines = (folder / ".env.example").read_text().splitlines()
    assert {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")} >= set(values)
    (folder / ".env").write_text("\n".join(f"{line.split('=', 1)[0]}={values[line.split('=', 1)[0]]}"
                                           if line.split("=", 1)[0] in values else line for line in lines) + "\n")
    log = open(tmp_path / "honcho.log", "wb")
    honcho = processes.supervisor.start([str(BIN / "honcho"), "-f", "Procfile.dev", "start"], cwd=str(folder),
                                        env=without_source(PATH=f"{BIN}{os.pathsep}/usr/bin:/bin"),
                                        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{values['PORT']}"
    wait_http(url + "/health", proc=honcho, timeout=60)
    body = json.dumps({"id": "honcho-1", "event": "content_item.changed", "payload": {"id": "x", "label": "Post"}})
    assert post(url, body.encode()).status_code == 202
    client = store.redis_client(redis_url)
    deadline = time.monotonic() + 60
    while not client.hexists(store.trace_key("honcho-1"), "run"):
        assert honcho.poll() is None, (tmp_path / "honcho.log").read_text()
        assert time.monotonic() < deadline, "the worker did not run the event"
        time.sleep(0.2)
    os.killpg(honcho.pid, signal.SIGINT)  # Ctrl-C in the terminal: honcho and both processes get it
    honcho.wait(30)
    text = (tmp_path / "honcho.log").read_text()
    assert "web.1 stopped" in text and "worker.1 stopped" in text and "Traceback" not in text, text[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)


@pytest.fixture
def tls_redis(processes: Processes, tmp_path: Path) -> str:
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    port = free_port()
    processes.start(["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file",
                     str(tmp_path / "cert.pem"), "--tls-key-file", str(tmp_path / "key.pem"),
                     "--tls-auth-clients", "no", "--save", "", "--bind", "127.0.0.1"], {}, "tls-redis")
    url = f"rediss://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url, ssl_cert_reqs="none").ping()
            return url
        except redis.ConnectionError:
            time.sleep(0.1)
    pytest.fail("TLS redis-server did not start")


def test_tls_redis_url_works_for_web_and_worker(processes: Processes, tls_redis: str, tmp_path: Path) -> None:
    """A managed Redis over TLS with a self-signed certificate (as Heroku's) and REDIS_TLS_VERIFY=0."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: podcasts\n    on: content_item.changed\n"
                     "    when: {label: {eq: Podcast}}\n    do: [{add_tags: [audio]}]\n")
    env = {"REDIS_URL": tls_redis, "REDIS_TLS_VERIFY": "0", "RULES_PATH": str(rules)}
    url = start_web(processes, tls_redis, **env)
    processes.start([str(BIN / "celery"), "-A", "tasks", "worker", "-c", "1", "-Q", "celery,bulk",
                     "--without-gossip", "--without-mingle"],
                    {**env, "CELERY_BROKER_URL": tls_redis, "PREPR_ACCESS_TOKEN": "t"}, "tls-worker")
    body = json.dumps({"id": "tls-1", "event": "content_item.changed", "payload": {"id": "x", "label": "Post"}})
    assert post(url, body.encode()).status_code == 202
    client = store.redis_client(tls_redis, 5.0, False)
    deadline = time.monotonic() + 30
    while not client.hexists(store.trace_key("tls-1"), "run"):
        assert time.monotonic() < deadline, "the worker did not process the event over TLS"
        time.sleep(0.1)
    assert requests.get(url + "/health", timeout=5).json()["broker"] == "up"
    assert KEY not in json.dumps(store.read_trace(client, "tls-1"))
