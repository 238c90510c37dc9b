"""Every subcommand, gathered in one list for the group. Each area owns its own commands."""
from __future__ import annotations

import click

from tasks.commands import COMMANDS as TASK_COMMANDS

from .dev import dev

ALL: list[click.Command] = [dev, *TASK_COMMANDS]

from sandbox.cli import sandbox_command  # noqa: E402

ALL.append(sandbox_command)

from .rules_cli import COMMANDS as RULE_COMMANDS  # noqa: E402

ALL.extend(RULE_COMMANDS)

from .send import send  # noqa: E402

ALL.append(send)

from tasks.backfill_cli import backfill  # noqa: E402

ALL.append(backfill)
