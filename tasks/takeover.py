"""Every worker process answers for the messages it holds, and takes over those of the dead.

A worker killed without acknowledging (SIGKILL, the OOM killer) used to hold its reserved and
running messages for the whole visibility timeout (300 s) before anyone else could run them.
Now a thread of each worker's main process, every BEAT_EVERY seconds:
- renews its heartbeat (tasks.transport: each message it holds names it);
- sends the acknowledgements and requeues that could not reach Redis (`settle_owed`);
- requeues the messages of processes whose heartbeat lapsed (ALIVE_TTL): a SIGKILLed worker's
  events run elsewhere within ALIVE_TTL + BEAT_EVERY (plus the item lock's 15 s, which lapses
  meanwhile), not minutes later;
- leads the coalesced runs whose claim is gone (tasks.orphans).

A Redis stall stops every heartbeat at once and Redis expires their keys by the wall clock, so
a sweeper takes over nothing until it has itself beaten without a gap for ALIVE_TTL: by then
every live worker has renewed its key. A process that is only paused (SIGSTOP) past ALIVE_TTL
has its messages run elsewhere too; running an event twice is safe (it re-plans against the
item, and its effects are recorded), losing it is not.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import bootsteps

from .transport import ALIVE_TTL, QoS

log = logging.getLogger("tasks.takeover")
BEAT_EVERY = 3.0


class Watch:
    """The thread: one per worker process, following the consumer's current channel."""

    def __init__(self) -> None:
        self.qos: QoS | None = None
        self.stop = threading.Event()
        self.healthy_since: float | None = None
        self.last_ok = 0.0
        self.thread: threading.Thread | None = None

    def follow(self, qos: Any) -> None:
        if isinstance(qos, QoS):
            self.qos = qos
        if self.thread is None or not self.thread.is_alive():
            self.stop.clear()
            self.thread = threading.Thread(target=self._loop, name="takeover", daemon=True)
            self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(BEAT_EVERY):
            try:
                self.once()
            except Exception as exc:  # Redis away or the channel closing: the next round tries again
                self.healthy_since = None
                log.debug("takeover round skipped (%s)", type(exc).__name__)

    def once(self) -> None:
        qos = self.qos
        if qos is None:
            return
        qos.beat()
        now = time.monotonic()
        if self.healthy_since is None or now - self.last_ok > 2 * BEAT_EVERY:
            self.healthy_since = now  # after a gap, others may not have renewed yet: wait ALIVE_TTL
        self.last_ok = now
        qos.settle_owed()
        if now - self.healthy_since >= ALIVE_TTL:
            qos.restore_orphans()
            from .orphans import sweep

            sweep()


_watch = Watch()


class Takeover(bootsteps.StartStopStep):
    """The consumer step that keeps the Watch on the consumer's current channel."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        _watch.follow(getattr(getattr(getattr(c, "task_consumer", None), "channel", None), "qos", None))

    def shutdown(self, c: Any) -> None:
        _watch.stop.set()
