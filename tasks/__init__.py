"""The queue: the Celery app (`celery -A tasks worker`) and the tasks that run rules against Prepr.

The app is loaded on first access to `tasks.app` (PEP 562), so the queue contract
(tasks.messages) and the other helpers import without Celery.
"""
from __future__ import annotations

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from .celery_app import app

        return app
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
