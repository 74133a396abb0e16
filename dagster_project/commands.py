"""What every `personas` subcommand shares, wherever it is defined: its `--home` option and the home it names."""

import argparse
from pathlib import Path

from dagster_project.paths import activate_home, personas_home


def add_home_command(group, name: str, handler, help_text: str) -> argparse.ArgumentParser:
    """A subcommand of `group` (a subparsers action) that runs `handler` over the home `--home` names."""
    command = group.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--home", help="PERSONAS_HOME (default: $PERSONAS_HOME or ./.personas)")
    command.set_defaults(handler=handler)
    return command


def home_of(args: argparse.Namespace) -> Path:
    """The home a command runs over, activated (its Dagster and MLflow settings set for this process)."""
    return activate_home(Path(args.home) if args.home else personas_home())
