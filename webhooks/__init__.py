"""The door: verifies, dedupes and enqueues Prepr's webhook deliveries."""
from .app import create_app

__all__ = ["create_app"]
