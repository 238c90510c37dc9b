"""Ids from a payload never leave their path segment: the planner's paths and the client's
requests percent-encode them (as the server receives them, raw), and ids that are not plain
strings or integers are refused."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from automation import evaluate, load_rules
from prepr.client import PreprClient

RULE = """\
version: 1
rules:
  - id: tag-all
    on: [content_item.changed]
    do:
      - add_tags: [sport]
"""
HOSTILE = [("../tags", "..%2Ftags"), ("X?fields=id", "X%3Ffields%3Did"), ("a#b c", "a%23b%20c"),
           ("é/", "%C3%A9%2F"), (42, "42")]


@pytest.mark.parametrize("item_id,segment", HOSTILE)
def test_planned_paths_encode_the_id(item_id: Any, segment: str, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE)
    rules = load_rules(tmp_path)
    envelope = {"id": "e1", "event": "content_item.changed", "payload": {"id": item_id}}
    assert rules.fetch_plan(envelope).path == f"/publications/{segment}"
    item = {"id": item_id, "locales": ["en-GB"], "items": {"en-GB": {"tags": {"items": []}}}}
    assert [call.path for call in evaluate(rules, envelope, item).plan] == [f"/publications/{segment}"]


@pytest.mark.parametrize("item_id", [{"id": "x"}, ["x"], True, None, "", ".", ".."])
def test_ids_that_are_not_plain_are_refused(item_id: Any, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULE)
    rules = load_rules(tmp_path)
    envelope = {"id": "e1", "event": "content_item.changed", "payload": {"id": item_id}}
    assert rules.fetch_plan(envelope) is None
    assert evaluate(rules, envelope, {"id": item_id, "locales": ["en-GB"]}).plan == ()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append(self.path)  # the request target exactly as sent
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_client_sends_each_id_as_one_encoded_segment(recorder: str) -> None:
    client = PreprClient(recorder, "token-x", recorder)
    for item_id, _ in HOSTILE:
        client.get_item(item_id)
        client.get_asset(item_id)
        client.get_person(item_id, fields="id")
    expected = []
    for _, segment in HOSTILE:
        expected += [f"/publications/{segment}", f"/assets/{segment}", f"/persons/{segment}?fields=id"]
    assert _Recorder.seen == expected
    for bad in ({"id": 1}, ["x"], True, None, "", ".", ".."):
        with pytest.raises(TypeError):
            client.get_item(bad)  # type: ignore[arg-type]
    assert len(_Recorder.seen) == len(expected)  # refused before any request
