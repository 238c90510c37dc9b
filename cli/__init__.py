"""The `prepr-automation` command line: one group of commands. Nothing imports this package."""
from __future__ import annotations

import sys

import click

from prepr_automation.settings import ConfigError


class _Group(click.Group):
    """Every failure of a command is one line on stderr, never a traceback: a ConfigError exits 2;
    Prepr or Redis unreachable or refusing, or any other error, exits 1 naming what failed."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        import redis

        from prepr.errors import PreprConnectionError, PreprError

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: already one line
        except ConfigError as exc:
            _fail(f"error: {exc}", 2)
        except PreprConnectionError as exc:
            _fail(f"error: Prepr is unreachable ({exc.method} {exc.path}): {exc.message.split(': ', 1)[-1]}"[:400])
        except PreprError as exc:
            _fail(f"error: Prepr refused the call: {exc}")
        except redis.RedisError as exc:
            _fail(f"error: the Redis store is unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001 - whatever else, one line that names it
            _fail(f"error: {type(exc).__name__}: {exc}")


def _fail(line: str, code: int = 1) -> None:
    click.echo(line.replace("\n", " "), err=True)
    sys.exit(code)


@click.group(cls=_Group)
@click.version_option(package_name="prepr-automation")
def main() -> None:
    """Content automation for Prepr: webhook receiver, rule engine, worker and sandbox."""


def _register() -> None:
    """Each area's commands, defined beside what they drive."""
    from sandbox.command import sandbox_command

    from .backfill import backfill
    from .dev import dev
    from .doctor import doctor
    from .operations import COMMANDS as OPERATIONS
    from .rules import COMMANDS as RULES
    from .send import send

    for command in (dev, sandbox_command, *RULES, send, *OPERATIONS, backfill, doctor):
        main.add_command(command)


_register()
