"""A local Prepr stand-in over real HTTP: the rule authors' playground and the e2e tests' peer."""
from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):
    """See sandbox.app.create_app (imported lazily: `import sandbox` stays cheap)."""
    from .app import create_app as factory
    return factory(*args, **kwargs)


def serve(*args: Any, **kwargs: Any) -> None:
    """See sandbox.command.serve."""
    from .command import serve as run
    run(*args, **kwargs)


__all__ = ["create_app", "serve"]
