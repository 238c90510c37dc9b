"""The `prepr-automation` command line: one group of commands. Nothing imports this package."""
from __future__ import annotations

import sys

import click

from prepr_automation.settings import ConfigError


class _Group(click.Group):
    """Turns a ConfigError anywhere in a command into one line on stderr and exit 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


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
