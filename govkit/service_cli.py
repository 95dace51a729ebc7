"""`python -m services.<name> serve|migrate|...`: the command line every service shares.

`serve` and `migrate` are the same everywhere; a service adds its own operator commands
(bulk import, calendar loading, ledger checks...) as `Command`s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import Field

from govkit import config
from govkit.config import ServiceSettings
from govkit.grpc_server import ServiceDefinition, run

S = TypeVar("S", bound=ServiceSettings)


class MigrationSettings(config.BaseSettings):
    """All `migrate` needs: a migration Job gets the database and no other secret."""

    database_url: str = Field(..., description="SQLAlchemy async URL of the service's database")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclass(frozen=True)
class Command(Generic[S]):
    """An operator command: `run(arguments, settings)` gives the process's exit status."""

    help: str
    run: Callable[[argparse.Namespace, S], int]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


def main(
    service: str,
    settings_type: type[S],
    definition: Callable[[S], ServiceDefinition],
    migrations_dir: Path,
    argv: list[str] | None = None,
    commands: Mapping[str, Command[S]] | None = None,
) -> int:
    commands = commands or {}
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve gRPC until SIGTERM")
    sub.add_parser("migrate", help="upgrade the database to the newest schema")
    for name, command in commands.items():
        command.arguments(sub.add_parser(name, help=command.help))
    args = parser.parse_args(argv)
    if args.command == "migrate":
        # Imported here: alembic (~10 MiB per process) is for the migration Job, not a serving process.
        from govkit import migrations

        migrations.upgrade(migrations_dir, config.load(MigrationSettings).database_url)
        return 0
    settings = config.load(settings_type)
    if args.command == "serve":
        run(definition(settings))
        return 0
    return commands[args.command].run(args, settings)
