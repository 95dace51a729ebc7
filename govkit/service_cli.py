"""`python -m services.<name> serve|migrate|...`: the command line every service shares.

`serve` and `migrate` are the same everywhere; a service adds its own operator commands
(bulk import, calendar loading, ledger checks...) as `Command`s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
from pydantic import Field

from govkit import config
from govkit.auth.tokens import TokenVerifier
from govkit.config import ServiceSettings
from govkit.consumer import ConsumerSpec
from govkit.db import Database
from govkit.grpc_server import ServiceDefinition, ServiceRuntime, identity_verifier, run
from govkit.tables import PlatformTables

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


def async_command(help: str, coroutine: Callable[[S], Coroutine[Any, Any, int]]) -> Command[S]:
    """A command without arguments of its own: one coroutine on the service's settings."""
    return Command(help, lambda _, settings: asyncio.run(coroutine(settings)))


def service_definition(
    name: str,
    settings: ServiceSettings,
    tables: PlatformTables,
    register: Callable[[grpc.aio.Server, ServiceRuntime], None],
    service_name: str,
    *,
    public_methods: Sequence[str] = (),
    consumers: Sequence[ConsumerSpec] = (),
    background: Iterable[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = (),
    make_verifier: Callable[[ServiceRuntime], TokenVerifier] | None = None,
) -> ServiceDefinition:
    """A service's definition; callers' tokens are checked with the keys identity publishes unless
    `make_verifier` says otherwise (identity, which signs them)."""
    return ServiceDefinition(
        name=name,
        settings=settings,
        tables=tables,
        register=register,
        service_names=(service_name,),
        public_methods=public_methods,
        consumers=consumers,
        make_verifier=make_verifier or identity_verifier(settings.token_issuer),
        background=list(background),
    )


@contextlib.asynccontextmanager
async def database(settings: ServiceSettings) -> AsyncIterator[Database]:
    """The service's database for one operator command, closed when the command is done."""
    db = Database(settings.database_url, ssl_ca_file=settings.tls_postgres_ca_file)
    try:
        yield db
    finally:
        await db.close()


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
