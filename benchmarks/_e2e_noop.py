"""The end-to-end benchmark's baseline: a Celery app whose one task does nothing.

`celery -A benchmarks._e2e_noop worker ...` runs it with the Procfile's worker flags. Its
configuration is copied from the project's app (`tasks.app`, configured from the same
environment), so broker, transport options, acks late, prefetch 1 and the queues are the
project's own: the only difference between the two workers is the task body.
"""
from __future__ import annotations

from typing import Any

from celery import Celery

NAME = "bench.noop"

# Everything in tasks.celery_app's configuration that shapes how a worker takes, runs and acks
# a message. Copied, not restated, so a change there is benchmarked on both sides.
_SHARED = ("broker_url", "broker_transport_options", "broker_connection_retry_on_startup", "result_backend",
           "task_ignore_result", "task_serializer", "accept_content", "result_serializer", "task_acks_late",
           "task_reject_on_worker_lost", "worker_prefetch_multiplier", "task_default_queue", "task_queues",
           "worker_hijack_root_logger", "worker_cancel_long_running_tasks_on_connection_loss", "broker_use_ssl")

app = Celery("bench_noop")


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    from tasks import app as project

    conf = project.conf  # configures the project's app from the environment
    sender.conf.update({key: conf[key] for key in _SHARED if key in conf})


@app.task(name=NAME)
def noop(*_: Any, **__: Any) -> None:
    return None
