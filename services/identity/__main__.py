"""`python -m services.identity serve|migrate|create-admin`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
from pathlib import Path

import grpc

from gov.identity.v1 import identity_pb2_grpc
from govkit import service_cli
from govkit.auth.tokens import TokenVerifier
from govkit.db import Database
from govkit.grpc_server import ServiceDefinition, ServiceRuntime
from services.identity import node_moves, staff_sync
from services.identity.flows import IdentityFlows
from services.identity.grpc_api import PUBLIC_METHODS, SERVICE, IdentityServicer
from services.identity.keys import KeyRing
from services.identity.models import platform
from services.identity.settings import IdentitySettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def _key_ring(db: Database, settings: IdentitySettings) -> KeyRing:
    return KeyRing(
        db,
        settings.signing_key_passphrase.get_secret_value().encode(),
        access_ttl=dt.timedelta(seconds=settings.access_token_ttl_seconds),
        rotation=dt.timedelta(days=settings.key_rotation_days),
    )


def definition(settings: IdentitySettings) -> ServiceDefinition:
    state: dict[str, KeyRing] = {}

    def make_verifier(runtime: ServiceRuntime) -> TokenVerifier:
        keys = _key_ring(runtime.db, settings)
        state["keys"] = keys
        # Another replica's rotation is read from the database at most once a second.
        return TokenVerifier(
            keys, issuer=settings.token_issuer, min_refresh_interval=1.0, local_jwks=keys.jwks
        )

    def register(server: grpc.aio.Server, runtime: ServiceRuntime) -> None:
        flows = IdentityFlows(runtime.db, settings, state["keys"])
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(flows), server)

    async def refresh_keys(runtime: ServiceRuntime) -> None:
        # Picks up rotations made by other replicas and rotates keys that grew too old.
        while True:
            try:
                await state["keys"].load()
            except Exception:
                log.exception("cannot refresh signing keys")
            await asyncio.sleep(30)

    return service_cli.service_definition(
        "identity",
        settings,
        platform,
        register,
        SERVICE,
        public_methods=PUBLIC_METHODS,
        consumers=[staff_sync.SPEC, node_moves.SPEC],
        background=[refresh_keys],
        make_verifier=make_verifier,
    )


async def _create_admin(settings: IdentitySettings) -> int:
    login = os.environ.get("ADMIN_LOGIN", "")
    password = os.environ.get("ADMIN_PASSWORD", "")
    if not login or not password:
        sys.stderr.write("create-admin: set ADMIN_LOGIN and ADMIN_PASSWORD\n")
        return 2
    async with service_cli.database(settings) as db:
        flows = IdentityFlows(db, settings, _key_ring(db, settings))
        created = await flows.users.ensure_admin(
            login, password, os.environ.get("ADMIN_PHONE", "13800000000")
        )
    print(f"admin '{login}' " + ("created" if created else "already exists; password left unchanged"))
    return 0


def main(argv: list[str] | None = None) -> int:
    create_admin = service_cli.async_command(
        "create the first administrator (ADMIN_LOGIN, ADMIN_PASSWORD; optional ADMIN_PHONE)", _create_admin
    )
    return service_cli.main(
        "identity", IdentitySettings, definition, MIGRATIONS, argv, {"create-admin": create_admin}
    )


if __name__ == "__main__":
    raise SystemExit(main())
