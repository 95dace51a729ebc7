"""`python -m services.blocks serve|migrate|import KIND FILE`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import blocks_pb2_grpc
from gov.identity.v1 import identity_pb2_grpc
from govkit import service_cli
from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Role
from govkit.errors import DomainError
from govkit.grpc_server import ServiceDefinition, ServiceRuntime
from services.blocks.flows import BlocksFlows
from services.blocks.grpc_api import SERVICE, BlocksServicer
from services.blocks.households import HouseholdFlows
from services.blocks.imports import ImportFlows
from services.blocks.models import platform
from services.blocks.settings import BlocksSettings

MIGRATIONS = Path(__file__).parent / "migrations"
KINDS = {
    "nodes": pb.IMPORT_KIND_NODES,
    "boundaries": pb.IMPORT_KIND_BOUNDARIES,
    "buildings": pb.IMPORT_KIND_BUILDINGS,
    "households": pb.IMPORT_KIND_HOUSEHOLDS,
    "residents": pb.IMPORT_KIND_RESIDENTS,
}
# The import command runs as ops with shell access to the service: a system principal.
OPERATOR = Principal("system:import-command", (Binding(Role.ADMIN, "*"),))


def definition(settings: BlocksSettings) -> ServiceDefinition:
    def register(server: grpc.aio.Server, runtime: ServiceRuntime) -> None:
        assert runtime.identity_channel is not None
        tree = BlocksFlows(runtime.db, identity_pb2_grpc.IdentityServiceStub(runtime.identity_channel))
        servicer = BlocksServicer(
            tree,
            HouseholdFlows(runtime.db),
            ImportFlows(runtime.db, tree.index.invalidate, settings.import_spool_dir or None),
        )
        blocks_pb2_grpc.add_BlocksServiceServicer_to_server(servicer, server)

    # Large import files arrive in chunks (StreamImportFile), so no request needs more than the
    # default: nothing makes the service hold a whole file in memory.
    return service_cli.service_definition("blocks", settings, platform, register, SERVICE)


async def _import(settings: BlocksSettings, kind: str, path: Path, validate_only: bool) -> int:
    async with service_cli.database(settings) as db:
        try:
            flows = ImportFlows(db, lambda: None, settings.import_spool_dir or None)
            reply = await flows.import_path(OPERATOR, KINDS[kind], path, validate_only=validate_only)
        except DomainError as exc:
            sys.stderr.write(f"import failed: {exc.message}\n")
            for field, message in exc.violations:
                sys.stderr.write(f"  {field}: {message}\n")
            return 1
    for e in reply.errors:
        sys.stderr.write(f"  line {e.line}, {e.field}: {e.message}\n")
    verb = "checked" if validate_only else "imported"
    print(
        f"{kind}: {verb} {reply.rows} rows: {reply.created} created, {reply.updated} updated, "
        f"{reply.unchanged} unchanged"
    )
    return 1 if reply.errors else 0


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("file", type=Path)
    parser.add_argument("--validate-only", action="store_true")


def _import_command(args: argparse.Namespace, settings: BlocksSettings) -> int:
    if not args.file.is_file():
        sys.stderr.write(f"import failed: {args.file} is not a file\n")
        return 1
    return asyncio.run(_import(settings, args.kind, args.file, args.validate_only))


def main(argv: list[str] | None = None) -> int:
    commands = {
        "import": service_cli.Command(
            "bulk import one file (all-or-nothing, idempotent)", _import_command, _import_arguments
        )
    }
    return service_cli.main("blocks", BlocksSettings, definition, MIGRATIONS, argv, commands)


if __name__ == "__main__":
    raise SystemExit(main())
