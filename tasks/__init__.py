"""The queue: the Celery app (`celery -A tasks worker`) and the tasks that run rules against Prepr."""
from .celery_app import app

__all__ = ["app"]
