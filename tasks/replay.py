"""Re-running work: dead letters (`dead-letters replay`, the console) and stored events (the console).

A letter is removed only once its task is on the broker, so a failed send loses nothing.
"""
from __future__ import annotations

from typing import Any

from .deadletters import DeadLetter, DeadLetters


def _send(task: str, args: list[Any], replay_of: str, broker_url: str | None = None) -> None:
    """On `broker_url` when given (the store's own Redis, as the CLI knows it), else the app's broker."""
    from .celery_app import app  # configured on first use, from the environment

    queue = "bulk" if task == "tasks.run_bulk" else "celery"
    with app.connection_for_write(broker_url) as connection:
        app.send_task(task, args=args, kwargs={"replay_of": replay_of}, queue=queue, connection=connection)


def replay_letters(dead: DeadLetters, letter_ids: list[str] | None = None,
                   broker_url: str | None = None) -> tuple[list[DeadLetter], list[str]]:
    """Re-run the given letters (all when None) once each, however often this is called at once;
    returns (replayed, ids not found — already replayed, being replayed, or unknown)."""
    letters = [dead.get(i) for i in letter_ids] if letter_ids else list(dead)
    missing = [i for i, letter in zip(letter_ids or [], letters) if letter is None]
    replayed = []
    for letter in filter(None, letters):
        if not dead.claim(letter.id):  # a concurrent replay (a double click) has it
            missing.append(letter.id)
            continue
        try:
            if dead.get(letter.id) is None:  # replayed between our read and our claim
                missing.append(letter.id)
                continue
            _send(letter.task, letter.args, letter.id, broker_url)
        except BaseException:
            dead.release(letter.id)  # not sent: the letter stays, a later replay may send it
            raise
        dead.remove(letter.id)  # only once its task is on the broker
        replayed.append(letter)
    return replayed, missing


def replay_event(envelope: dict[str, Any]) -> None:
    """Process a stored event again; its trace's `run` is replaced by the new run's."""
    _send("tasks.process_event", [envelope], f"event {envelope['id']}")
