"""kombu's Redis transport with the worker surviving a broker outage.

When the broker goes away, Celery collects the connection (clearing the transport's client)
and then closes it; closing the channel requeues the un-acked messages the worker held, and
with the client cleared that raises AttributeError — not one of the connection errors Celery
ignores there — so the whole worker stops ("Unrecoverable error"). The same happens when a task
that outlived the connection (a threads pool cannot cancel it) acknowledges its message on the
old channel. Here those calls fail quietly: the messages stay listed as delivered, and
RestoreInFlight (tasks.celery_app) requeues them as soon as the consumer is connected again
(a task that had finished runs again: its plan is empty and its effects are recorded as sent).
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


    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)
        except AttributeError:  # a channel of a connection that was lost (see the module doc)
            log.warning("message %s not acknowledged on a lost connection: it runs again", delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except AttributeError:  # idem: requeued on reconnect, or after the visibility timeout
            log.warning("message %s not rejected on a lost connection: it runs again", delivery_tag)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
