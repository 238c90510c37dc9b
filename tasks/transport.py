"""kombu's Redis transport with the worker surviving a broker outage, and a dead worker's messages
taken over in seconds.

When the broker goes away, Celery collects the connection (clearing the transport's client)
and then closes it; closing the channel requeues the un-acked messages the worker held, and
with the client cleared that raises AttributeError — not one of the connection errors Celery
ignores there — so the whole worker stops ("Unrecoverable error"). The same happens when a task
that outlived the connection (a threads pool cannot cancel it) acknowledges its message on the
old channel. Here those calls fail quietly: the messages stay listed as delivered, and
RestoreInFlight (tasks.celery_app) requeues them as soon as the consumer is connected again
(a task that had finished runs again: its plan is empty and its effects are recorded as sent).

An acknowledgement or a requeue that cannot reach Redis (a stall, a timeout on a connection
that is not dropped) is owed, not forgotten: `settle_owed` (tasks.takeover, every few seconds)
sends it once Redis answers, so a message a task gave back is never left to the visibility
timeout. So is the listing of a message Redis handed over just before it went away (already
off its queue): the message runs, and a requeue puts it back from the copy kept here.

And every message delivered is listed with the worker process holding it (`unacked_owner`),
in the same step that renews that process's heartbeat key (`unacked_alive:<owner>`, ALIVE_TTL):
`restore_orphans` puts back on their queues the messages of a process whose heartbeat stopped
(SIGKILL, OOM) — seconds, not the visibility timeout.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import QoS as VirtualQoS
from kombu.utils.json import dumps, loads

log = logging.getLogger("tasks.transport")
ALIVE_TTL = 12.0  # seconds a worker process counts as alive after its last heartbeat
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
_owed: list[tuple[str, str, str | None]] = []  # (delivery tag, what, message) Redis has not taken yet
_owed_lock = threading.Lock()
_owner: tuple[int, str] | None = None


def owner() -> str:
    """This process's name as the holder of messages (a new one after a fork)."""
    global _owner
    if _owner is None or _owner[0] != os.getpid():
        _owner = (os.getpid(), f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    return _owner[1]


class QoS(kombu_redis.QoS):
    owner_key = "unacked_owner"
    alive_prefix = "unacked_alive:"

    def append(self, message: Any, delivery_tag: str) -> None:
        """kombu's bookkeeping of a delivered message, plus its holder and the holder's heartbeat,
        in one pipeline: a message is never listed without a live owner to answer for it."""
        delivery = message.delivery_info
        raw = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        try:
            self._listed(delivery_tag, raw, time.time())
        except UNREACHABLE as exc:  # already taken off its queue: run it, and list it once Redis answers
            self._owe(delivery_tag, "list", exc, raw)
        VirtualQoS.append(self, message, delivery_tag)

    def _listed(self, delivery_tag: str, raw: str, at: float) -> None:
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: at}) \
                .hset(self.unacked_key, delivery_tag, raw) \
                .hset(self.owner_key, delivery_tag, owner()) \
                .set(self.alive_prefix + owner(), "1", px=int(ALIVE_TTL * 1000)) \
                .execute()

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        return super()._remove_from_indices(delivery_tag, pipe).hdel(self.owner_key, delivery_tag)

    def restore_unacked_once(self, stderr: Any = None) -> None:
        try:
            super().restore_unacked_once(stderr)
        except Exception as exc:  # requeued on reconnect instead (see the module doc)
            log.warning("un-acked messages not requeued while the broker is away (%s): requeued on reconnect",
                        type(exc).__name__)

    def ack(self, delivery_tag: Any) -> None:
        if _unlisted(delivery_tag) is not None:  # never listed in Redis: nothing to remove there
            VirtualQoS.ack(self, delivery_tag)
            return
        try:
            super().ack(delivery_tag)
        except AttributeError:  # a channel of a connection that was lost (see the module doc)
            log.warning("message %s not acknowledged on a lost connection: it runs again", delivery_tag)
        except UNREACHABLE as exc:
            self._owe(delivery_tag, "ack", exc)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        raw = _unlisted(delivery_tag)
        if raw is not None:  # never listed: put it back on its queue from the copy kept here
            if requeue:
                self._owe(delivery_tag, "push", None, raw)  # sent within BEAT_EVERY (tasks.takeover)
            VirtualQoS.ack(self, delivery_tag)
            return
        try:
            super().reject(delivery_tag, requeue=requeue)
        except AttributeError:  # idem: requeued on reconnect, or after the visibility timeout
            log.warning("message %s not rejected on a lost connection: it runs again", delivery_tag)
        except UNREACHABLE as exc:
            self._owe(delivery_tag, "requeue" if requeue else "ack", exc)

    def _owe(self, delivery_tag: str, action: str, exc: BaseException | None, raw: str | None = None) -> None:
        with _owed_lock:
            _owed.append((delivery_tag, action, raw))
        if action in ("ack", "requeue"):
            VirtualQoS.ack(self, delivery_tag)  # no longer this channel's: the owed list answers for it
        if exc is not None:
            log.warning("message %s: %s not sent, Redis unreachable (%s): sent once it answers", delivery_tag,
                        action, type(exc).__name__)

    def beat(self) -> None:
        """Renew this process's heartbeat."""
        with self.channel.conn_or_acquire() as client:
            client.set(self.alive_prefix + owner(), "1", px=int(ALIVE_TTL * 1000))

    def settle_owed(self) -> int:
        """Send, in order, the listings, acknowledgements and requeues that could not reach Redis;
        how many were sent (a Redis error stops the round: the rest waits for the next)."""
        sent = 0
        while True:
            with _owed_lock:  # taken off first: a requeue on reconnect (restore_unlisted) never doubles it
                if not _owed:
                    return sent
                entry = _owed.pop(0)
            tag, action, raw = entry
            try:
                if action == "list":
                    self._listed(tag, raw or "", time.time())
                elif action == "push":
                    self._push(raw or "[]")
                elif action == "requeue":
                    self.restore_by_tag(tag, leftmost=True)
                else:
                    self._remove_from_indices(tag).execute()
            except BaseException:
                with _owed_lock:
                    _owed.insert(0, entry)
                raise
            sent += 1

    def restore_unlisted(self, delivery_tag: str) -> bool:
        """Requeue a message whose listing was still owed when the connection was lost (Celery
        drops what it held then): from the copy kept here. False: it was listed (or never ours)."""
        raw = _unlisted(delivery_tag)
        if raw is None:
            return False
        try:
            self._push(raw)
        except UNREACHABLE as exc:
            self._owe(delivery_tag, "push", exc, raw)
        return True

    def _push(self, raw: str) -> None:
        message, exchange, routing_key = loads(raw)
        with self.pipe_or_acquire() as pipe:
            self.channel._do_restore_message(message, exchange, routing_key, pipe, True)
            pipe.execute()

    def restore_orphans(self) -> int:
        """Requeue the messages held by worker processes whose heartbeat stopped; how many."""
        with self.channel.conn_or_acquire() as client:
            held = {tag.decode(): name.decode() for tag, name in client.hgetall(self.owner_key).items()}
            names = sorted(set(held.values()) - {owner()})
            if not names:
                return 0
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.exists(self.alive_prefix + name)
                alive = dict(zip(names, pipe.execute()))
            orphans = [tag for tag, name in held.items() if name in alive and not alive[name]]
            for tag in orphans:  # a transaction on the unacked hash: two sweepers restore it once
                self.restore_by_tag(tag, client, leftmost=True)
        if orphans:
            log.warning("requeued %d message(s) held by worker(s) that stopped answering: %s", len(orphans),
                        ", ".join(n for n in names if not alive[n]))
        return len(orphans)


def owed() -> int:
    return len(_owed)


def _unlisted(delivery_tag: str) -> str | None:
    """A delivered message whose listing is still owed: taken off the owed list, its copy returned."""
    with _owed_lock:
        for entry in _owed:
            if entry[0] == delivery_tag and entry[1] == "list":
                _owed.remove(entry)
                return entry[2]
    return None


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
