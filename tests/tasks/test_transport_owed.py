"""tasks.transport against a real redis-server of the test's own, stopped and restarted at the
exact steps a worker meets only by chance: a message taken off its queue just before Redis went
away, a requeue Redis did not take, a dead worker's message. None is lost or left to the
visibility timeout."""
from __future__ import annotations

from pathlib import Path

import redis
from kombu import Connection, Exchange, Producer, Queue

from tasks.transport import QoS, owner
from tests.conftest import Processes, free_port
from tests.tasks.test_outage import _redis_server

QUEUE = Queue("celery", Exchange("celery"), routing_key="celery")


def _setup(processes: Processes, tmp_path: Path) -> tuple[int, redis.Redis, Connection]:
    port = free_port()
    _redis_server(processes, tmp_path / "redis", port)
    connection = Connection(f"redis://127.0.0.1:{port}/0", transport="tasks.transport:Transport",
                            transport_options={"socket_timeout": 1, "socket_connect_timeout": 0.5})
    return port, redis.Redis(port=port), connection


def test_messages_redis_could_not_book_are_kept_and_sent_once_it_answers(processes: Processes, tmp_path: Path) -> None:
    port, client, connection = _setup(processes, tmp_path)
    channel = connection.channel()
    qos: QoS = channel.qos
    Producer(channel).publish({"n": 1}, exchange=QUEUE.exchange, routing_key="celery", declare=[QUEUE])
    Producer(channel).publish({"n": 2}, exchange=QUEUE.exchange, routing_key="celery")
    taken = channel.Message(channel._get("celery"), channel=channel)  # Redis handed it over...
    listed = channel.basic_get("celery")  # ...and this one it booked as delivered
    assert client.hget("unacked_owner", listed.delivery_tag).decode() == owner()

    processes.stop(processes.procs[-1])  # ...then went away
    qos.append(taken, taken.delivery_tag)  # the booking fails: kept here, the message still runs
    qos.reject(listed.delivery_tag, requeue=True)  # the task gave it back: owed, not raised
    _redis_server(processes, tmp_path / "redis", port)

    assert qos.restore_unlisted(taken.delivery_tag)  # the consumer reconnects: requeued from the copy
    assert qos.settle_owed() == 1  # the requeue Redis did not take
    assert client.llen("celery") == 2 and client.hlen("unacked") == 0 and client.hlen("unacked_owner") == 0
    assert qos.settle_owed() == 0 and not qos.restore_unlisted(taken.delivery_tag)  # each once


def test_a_dead_workers_messages_are_requeued_a_live_ones_are_not(processes: Processes, tmp_path: Path) -> None:
    _, client, connection = _setup(processes, tmp_path)
    channel = connection.channel()
    for n in range(3):
        Producer(channel).publish({"n": n}, exchange=QUEUE.exchange, routing_key="celery", declare=[QUEUE])
    mine = channel.basic_get("celery")
    theirs = [channel.basic_get("celery") for _ in range(2)]
    client.hset("unacked_owner", theirs[0].delivery_tag, "host-1-dead")  # its heartbeat key never renewed
    client.hset("unacked_owner", theirs[1].delivery_tag, "host-2-alive")
    client.set("unacked_alive:host-2-alive", "1", px=10_000)

    assert channel.qos.restore_orphans() == 1
    assert client.llen("celery") == 1 and client.hexists("unacked", mine.delivery_tag)
    assert client.hexists("unacked", theirs[1].delivery_tag) and not client.hexists("unacked", theirs[0].delivery_tag)
    assert channel.qos.restore_orphans() == 0
