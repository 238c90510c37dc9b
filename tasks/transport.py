"""kombu's Redis transport with the worker surviving a broker outage.

When the broker goes away, Celery collects the connection (clearing the transport's client)
and then closes it; closing the channel requeues the un-acked messages the worker held, and
with the client cleared that raises AttributeError — not one of the connection errors Celery
ignores there — so the whole worker stops ("Unrecoverable error"). Here that requeue may fail
quietly: the messages stay listed as delivered, and RestoreInFlight (tasks.celery_app)
requeues them as soon as the consumer is connected again.
"""
from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger("tasks.transport")


class QoS(kombu_redis.QoS):
    def restore_unacked_once(self, stderr: Any = None) -> None:
        try:
            super().restore_unacked_once(stderr)
        except Exception as exc:  # requeued on reconnect instead (see the module doc)
            log.warning("un-acked messages not requeued while the broker is away (%s): requeued on reconnect",
                        type(exc).__name__)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
