"""What ops teams rely on: configuration errors, health, migrations and graceful shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import grpc
import nats
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from govkit import migrations
from govkit.devstack import REPO, Stack, free_port, wait_serving
from services.blocks.models import Base as BlocksBase
from services.identity.models import Base as IdentityBase
from services.points.models import Base as PointsBase
from services.tickets.models import Base as TicketsBase
from tests.conftest import STACK_ENV, migrate_identity
from tests.support.databases import Databases
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD


def test_missing_or_bad_setting_stops_with_its_name(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{REPO}:{REPO / 'gen'}",
        "GOV_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
    }
    missing = subprocess.run(
        [sys.executable, "-m", "services.identity", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "GOV_SIGNING_KEY_PASSPHRASE" in missing.stderr and "Traceback" not in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "services.identity", "serve"],
        env={**env, "GOV_SIGNING_KEY_PASSPHRASE": "x" * 20, "GOV_GRPC_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "GOV_GRPC_PORT" in bad.stderr
    # The secret's value is never echoed back.
    assert "x" * 20 not in bad.stderr


def _status(addr: str) -> int | None:
    with grpc.insecure_channel(addr) as channel:
        try:
            return (
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status
            )
        except grpc.RpcError:
            return None


def _stream_count(nats_url: str, stream: str) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            return (await nc.jsm().stream_info(stream)).state.messages
        except nats.js.errors.NotFoundError:  # the service has not made its stream yet
            return 0
        finally:
            await nc.close()

    return asyncio.run(count())


def test_serving_without_nats_events_wait_in_the_outbox_then_drains_on_sigterm(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A broker outage (here: at start) must not stop a service: it serves, its events wait in the
    outbox, and they go out once NATS comes."""
    stack = Stack(tmp_path_factory.mktemp("ops"), base_env=STACK_ENV)
    try:
        env = migrate_identity(stack, databases.url("identity"))  # two events in the outbox
        nats_port, grpc_port = free_port(), free_port()
        addr = f"127.0.0.1:{grpc_port}"
        proc = stack.spawn(
            "identity",
            [sys.executable, "-m", "services.identity", "serve"],
            stack.env(**env, GOV_GRPC_PORT=str(grpc_port), GOV_NATS_URL=f"nats://127.0.0.1:{nats_port}"),
        )
        # The database answers, the message bus does not: ready all the same.
        wait_serving(addr, 30, proc.popen)
        with grpc.insecure_channel(addr) as channel:
            stub = IdentityServiceStub(channel)
            started = time.monotonic()
            # Well under NATS's publish timeout (5 s): no request waits for the bus.
            token = stub.Login(ipb.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD), timeout=4)
            stub.CreateUser(
                ipb.CreateUserRequest(
                    user=ipb.User(phone="13912345678", display_name="无总线", scope="yuhu"),
                    password="correct-horse-battery",
                ),
                metadata=(("authorization", f"Bearer {token.access_token}"),),
                timeout=4,
            )
            assert time.monotonic() - started < 4
        assert _status(addr) == health_pb2.HealthCheckResponse.SERVING
        stack.start_nats(port=nats_port)
        deadline = time.monotonic() + 30
        # admin created + role granted, then the user created while NATS was away.
        while _stream_count(stack.nats_url, "IDENTITY") < 3:
            assert time.monotonic() < deadline, "events did not leave the outbox"
            time.sleep(0.2)
        assert stack.stop_proc(proc) == 0  # SIGTERM: drained and exited cleanly
    finally:
        stack.stop()


def _round_trip(migrations_dir: Path, url: str) -> None:
    migrations.upgrade(migrations_dir, url)
    command.downgrade(migrations.alembic_config(migrations_dir, url), "base")
    migrations.upgrade(migrations_dir, url)


@pytest.mark.parametrize(
    ("service", "metadata"),
    [
        ("identity", IdentityBase.metadata),
        ("blocks", BlocksBase.metadata),
        ("tickets", TicketsBase.metadata),
        ("points", PointsBase.metadata),
    ],
)
async def test_migrations_round_trip_and_produce_exactly_the_models(
    databases: Databases, service: str, metadata: MetaData
) -> None:
    url = databases.url(service)
    # Alembic runs its own event loop; keep it off the test's loop.
    await asyncio.to_thread(_round_trip, REPO / f"services/{service}/migrations", url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


async def test_a_migrated_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    """The migration leaves the file in WAL mode, so the connections of processes starting together
    never race to switch its journal (which needs the file to themselves). SQLite only: PostgreSQL
    has no journal mode."""
    import sqlite3

    path = tmp_path / "walmode.db"
    await asyncio.to_thread(
        migrations.upgrade, REPO / "services/tickets/migrations", f"sqlite+aiosqlite:///{path}"
    )
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
