"""The Celery app. Configured lazily on first use, so importing it starts nothing.

Reliability settings, and why:
- acks_late + reject_on_worker_lost: a task is removed from the queue only once it has run,
  so a worker killed mid-event has its event re-delivered;
- prefetch 1: a worker holds only the message it is working on;
- visibility_timeout (VISIBILITY_TIMEOUT, default 300 s): how long an un-acked message waits
  before it is re-delivered (then within ~10 s); well above the longest event task, far below
  kombu's 1 hour. Only for a message no live worker answers for: the messages of a worker that
  died (SIGKILL, OOM) are taken over within seconds (Takeover, tasks.takeover);
- JSON only: tasks take JSON-able arguments and nothing is ever unpickled;
- kombu's Redis transport with one fix (tasks.transport), and after the broker comes back from an outage, the messages that were in flight when it went
  away are put back on their queue at once (RestoreInFlight), not after the visibility timeout.
"""
from __future__ import annotations

import logging
import os
import ssl
import sys

from celery import Celery, bootsteps, signals
from celery.app.trace import LOG_SUCCESS
from kombu import Queue

from prepr_automation import store
from prepr_automation.settings import ConfigError, load_settings

from .takeover import Takeover

app = Celery("prepr_automation", include=["tasks.events", "tasks.bulk", "tasks.effects"])
log = logging.getLogger("tasks.celery_app")


class RestoreInFlight(bootsteps.StartStopStep):
    """On losing the broker, kombu tries to requeue the un-acked messages this worker held and,
    the broker being down, gives up: they would wait for the visibility timeout (minutes). When
    the consumer starts again on a new connection, requeue them (a no-op for a message acked or
    requeued meanwhile): the outage then costs its own length, not the timeout."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: object, **kwargs: object) -> None:
        super().__init__(c, **kwargs)
        self.previous: object | None = None

    def start(self, c: object) -> None:
        qos = getattr(getattr(getattr(c, "task_consumer", None), "channel", None), "qos", None)
        old, self.previous = self.previous, qos
        tags = list(getattr(old, "_delivered", None) or ()) if old is not None and old is not qos else []
        restored = 0
        for tag in tags:
            try:
                if not getattr(qos, "restore_unlisted", lambda t: False)(tag):  # tasks.transport
                    qos.restore_by_tag(tag)  # type: ignore[union-attr]
                restored += 1
            except Exception:  # left to the visibility timeout, as without this step
                log.warning("message %s not requeued after the outage", tag, exc_info=True)
        if restored:
            log.warning("requeued %d message(s) in flight when the broker went away", restored)


app.steps["consumer"].add(RestoreInFlight)
app.steps["consumer"].add(Takeover)


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    url = store.broker_url(settings)
    # kombu scans for un-acked messages of dead workers every 10 s but, by default, acts on
    # only one scan in ten: re-delivery would take minutes more than the visibility timeout.
    # Connections: every channel's pool blocks at PER_CHANNEL (tasks.fullstore), and publishes share
    # one pooled connection, so Celery holds at most CELERY_CONNECTIONS (tasks.runtime).
    from .runtime import PER_CHANNEL

    transport = {"visibility_timeout": settings.visibility_timeout, "unacked_restore_interval": 10,
                 "unacked_restore_throttle": 1, "unacked_mutex_expire": 60, "socket_timeout": 5,
                 "socket_connect_timeout": 5, "health_check_interval": 30, "max_connections": PER_CHANNEL,
                 "client_name": f"pa-celery-{os.getpid()}"}
    sender.conf.update(
        broker_url=url,
        broker_transport="tasks.fullstore:Transport",  # kombu's, surviving an outage and a full Redis
        broker_transport_options=transport,
        broker_pool_limit=1,
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="celery",
        task_queues=(Queue("celery", routing_key="celery"), Queue("bulk", routing_key="bulk")),
        task_routes={"tasks.run_bulk": {"queue": "bulk"}},
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=True,  # as `-E`: Flower and `celery events` see every task
    )
    if url.startswith("rediss://"):
        sender.conf.broker_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED if settings.redis_tls_verify else ssl.CERT_NONE}


class _OneLinePerEvent(logging.Filter):
    """tasks.events logs one line per event, with its outcome and time; Celery's own success line
    for the same task would only repeat it (retries and failures are still Celery's to log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == LOG_SUCCESS and isinstance(record.args, dict)
                    and record.args.get("name") in ("tasks.process_event", "tasks.run_pending"))


@signals.worker_init.connect
def _worker_init(**_: object) -> None:
    """A worker without its token stops at start with one line, not at the first event."""
    from prepr_automation.observability import init_sentry

    logging.getLogger("celery.app.trace").addFilter(_OneLinePerEvent())

    try:
        settings = load_settings(require=("access_token",))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    init_sentry(settings, "worker")
    from prepr_automation.eviction import EvictionCheck

    from .runtime import CELERY_CONNECTIONS, store_share, worker_store

    EvictionCheck(worker_store(settings)).warn()
    limit = store.connection_limit(settings, "worker")
    if CELERY_CONNECTIONS + store_share(settings) > limit:  # below Celery's own need: say what it holds
        log.warning("REDIS_MAX_CONNECTIONS=%d is below what a worker needs: it holds up to %d (Celery's %d and 2 "
                    "for the store)", limit, CELERY_CONNECTIONS + store_share(settings), CELERY_CONNECTIONS)  # evicting Redis drops queued events: say so at start


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _scrub_logs(logger: logging.Logger, **_: object) -> None:
    """Every handler Celery sets up (main process and each pool child) replaces the configured
    secrets in what it writes: a payload or a Prepr answer may carry one."""
    from prepr_automation.observability import scrub_logs, secret_values

    try:
        secrets = secret_values(load_settings())
    except ConfigError:
        return  # the worker stops at start with its own one line (_worker_init)
    for target in (logger, logging.getLogger()):
        scrub_logs(secrets, target)
