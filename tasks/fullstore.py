"""The broker transport of the worker on a managed Redis: bounded connections, and a full Redis waited out.

Bounded: kombu gives every channel an unbounded-by-default redis-py pool that *raises* when its
`max_connections` is reached. Here each is a blocking pool: a thread finding the channel's
connections busy waits for one (at most POOL_TIMEOUT), so the transport option bounds the
connections without failing anything (docs/deploy.md counts them).

A full Redis (`maxmemory` under `noeviction`) refuses every write that needs memory with OOM,
and kombu meets that in places a worker does not survive: recording a message it has just
popped as un-acked (the message would be lost), acknowledging inside MULTI (Redis refuses any
command queued in a transaction while full), requeueing. Here each of those waits until Redis
has room (trimming the history once to make some: prepr_automation.budget), logging once a
minute, and then goes on; an acknowledgement is sent without MULTI, which Redis accepts even
when full (deleting frees memory). The worker never exits for it and needs no restart.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, TypeVar

import redis
from kombu.transport import redis as kombu_redis

from . import transport

log = logging.getLogger("tasks.fullstore")
POOL_TIMEOUT = 20.0
PAUSE = 1.0  # seconds between tries while Redis is full
T = TypeVar("T")


def _make_room(pool: Any) -> None:
    from prepr_automation.budget import Budget
    from prepr_automation.history import CAP

    try:
        Budget(redis.Redis(connection_pool=pool), None, 7 * 24 * 3600, CAP).make_room()
    except Exception:  # noqa: BLE001 - making room is a courtesy; waiting is the remedy
        log.debug("could not make room", exc_info=True)


def until_room(what: str, attempt: Callable[[], T], pool: Any = None) -> T:
    """`attempt()` again and again while Redis answers OOM; other errors pass through."""
    started = logged = 0.0
    while True:
        try:
            return attempt()
        except redis.OutOfMemoryError:
            now = time.monotonic()
            if not started:
                started = now
                if pool is not None:
                    _make_room(pool)
            if now - logged >= 60:
                log.warning("Redis is full (maxmemory, noeviction): %s waits for room (%.0f s so far)",
                            what, now - started)
                logged = now
            time.sleep(PAUSE)


class QoS(transport.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        until_room(f"recording message {delivery_tag} as delivered",
                   lambda: super(QoS, self).append(message, delivery_tag), self.channel.pool)

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)
        except redis.OutOfMemoryError:  # refused inside MULTI; the same deletions outside it are not
            with self.channel.conn_or_acquire() as client:
                with client.pipeline(transaction=False) as pipe:
                    pipe.zrem(self.unacked_index_key, delivery_tag).hdel(self.unacked_key, delivery_tag).execute()
            kombu_redis.virtual.QoS.ack(self, delivery_tag)

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().restore_visible(*args, **kwargs)
        except redis.OutOfMemoryError:  # its mutex is a write: the next scan (10 s) tries again
            log.warning("Redis is full: un-acked messages of dead workers are requeued once it has room")

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        until_room(f"requeueing message {tag}", lambda: super(QoS, self).restore_by_tag(tag, client, leftmost),
                   self.channel.pool)


class Channel(transport.Channel):
    QoS = QoS

    def _get_pool(self, asynchronous: bool = False) -> redis.ConnectionPool:
        params = self._connparams(asynchronous=asynchronous)
        self.keyprefix_fanout = self.keyprefix_fanout.format(db=params["db"])
        return redis.BlockingConnectionPool(timeout=POOL_TIMEOUT, **params)

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        """A publish (a retry, a scheduled run) waits for room instead of failing its task."""
        until_room(f"publishing to {queue}", lambda: super(Channel, self)._put(queue, message, **kwargs), self.pool)


class Transport(transport.Transport):
    Channel = Channel
