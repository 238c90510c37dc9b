"""The `prepr-automation` command: one group, each command defined beside what it drives."""
from __future__ import annotations

import sys

import click

from .settings import ConfigError


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
    from . import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
