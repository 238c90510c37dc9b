"""Every subcommand, gathered in one list for the group. Each area owns its own commands."""
from __future__ import annotations

import click

from .dev import dev

ALL: list[click.Command] = [dev]
