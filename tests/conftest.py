"""Shared fixtures: every integration test runs against real processes on SQLite and PostgreSQL.

The `backend` fixture is parametrized; PostgreSQL is skipped only when it is unreachable
and GOV_TEST_REQUIRE_POSTGRES is not set (CI sets it whenever PostgreSQL answers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub as BlocksStub
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub as NotificationsStub
from gov.points.v1.points_pb2_grpc import PointsServiceStub as PointsStub
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub as TicketsStub
from govkit.devstack import Stack
from tests.support.databases import Databases, postgres_reachable
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD, IdentityClient
from tests.support.mailsink import MailSink
from tests.support.points import Village, make_village
from tests.support.tickets import World, make_world
from tests.support.webhooks import Robot, serve

CORS_ORIGIN = "https://ops.example.org"

# Cheap hashing and a short lockout keep the suite fast; production defaults are in settings.py.
IDENTITY_ENV = {
    "GOV_SIGNING_KEY_PASSPHRASE": "test-passphrase-not-a-secret",
    "GOV_ARGON2_TIME_COST": "1",
    "GOV_ARGON2_MEMORY_KIB": "1024",
    "GOV_LOCKOUT_THRESHOLD": "3",
    "GOV_LOCKOUT_WINDOW_SECONDS": "60",
    "GOV_LOCKOUT_DURATION_SECONDS": "3",
    # Fixtures log in once per module or session; on a loaded machine a module outlasts the
    # default 5 minutes, and a test would fail on an expired fixture token, not on its subject.
    "GOV_ACCESS_TOKEN_TTL_SECONDS": "3600",
}

# Every test stack's base environment. Telemetry on (so trace context is real), exported nowhere.
# Small database pools: make test runs stacks side by side against one PostgreSQL (100 connections).
# A call that takes a second connection while it holds a write transaction fails (it is what starved
# small pools under load), so the suite finds every such place.
STACK_ENV = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "GOV_LOG_LEVEL": "WARNING",
    "GOV_DB_POOL_SIZE": "4",
    "GOV_DB_FORBID_NESTED_CONNECTIONS": "true",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, `-n 2 --dist loadgroup`) each backend's tests run in one
    worker, beside the other backend's: still one session stack per backend, and the two halves of
    the suite overlap instead of following each other. Unit tests go to whichever worker is free."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if backend is not None:
            item.add_marker(pytest.mark.xdist_group(backend))


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not postgres_reachable():
        if os.environ.get("GOV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("GOV_TEST_REQUIRE_POSTGRES=1 but PostgreSQL is not reachable")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    return request.param


@pytest.fixture(scope="session")
def databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield dbs
    dbs.drop_all()


def tickets_env_for(db_url: str) -> dict[str, str]:
    # A fast sweep, so deadline tests wait a second, not half a minute.
    return {"GOV_DATABASE_URL": db_url, "GOV_SWEEP_INTERVAL_SECONDS": "0.5"}


def notifications_env(s: Stack, db_url: str, **extra: str) -> dict[str, str]:
    """Migrated database, its own service account, fast retries so retry tests wait seconds."""
    env = {
        "GOV_DATABASE_URL": db_url,
        "GOV_NOTIFICATIONS_BACKOFF_SECONDS": "0.2",
        "GOV_NOTIFICATIONS_BACKOFF_MAX_SECONDS": "1",
        "GOV_NOTIFICATIONS_MAX_ATTEMPTS": "3",
        "GOV_NOTIFICATIONS_HEARTBEAT_SECONDS": "2",
        # No default quiet hours (an empty window), so no test's e-mail waits for the morning; the
        # quiet-hours tests set a person's own window.
        "GOV_NOTIFICATIONS_QUIET_START": "00:00",
        "GOV_NOTIFICATIONS_QUIET_END": "00:00",
        "GOV_NOTIFICATIONS_DIGEST_INTERVAL_SECONDS": "1",
        **extra,
    }
    s.run_command("notifications", "migrate", env)
    return {**env, **s.create_service_account("notifications", ADMIN_LOGIN, ADMIN_PASSWORD)}


def identity_env(db_url: str) -> dict[str, str]:
    return {**IDENTITY_ENV, "GOV_DATABASE_URL": db_url}


def migrate_identity(s: Stack, db_url: str, *, admin: bool = True) -> dict[str, str]:
    """Identity's settings on `db_url`, migrated, with the first admin unless `admin` is False (which
    commits two events to its outbox)."""
    env = identity_env(db_url)
    s.run_command("identity", "migrate", env)
    if admin:
        s.run_command(
            "identity", "create-admin", {**env, "ADMIN_LOGIN": ADMIN_LOGIN, "ADMIN_PASSWORD": ADMIN_PASSWORD}
        )
    return env


def start_identity(s: Stack, databases: Databases, *, admin: bool = True) -> None:
    """Identity on its freshly migrated database, with the first admin unless `admin` is False."""
    s.start_service("identity", migrate_identity(s, databases.url("identity"), admin=admin))


@contextlib.contextmanager
def stack_of_its_own(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Stack]:
    """An empty stack in a folder of its own, stopped at the end: for tests that stop or restart its parts."""
    s = Stack(tmp_path_factory.mktemp(name), base_env=STACK_ENV)
    try:
        yield s
    finally:
        s.stop()


def start_migrated(s: Stack, service: str, env: dict[str, str]) -> None:
    s.run_command(service, "migrate", env)
    s.start_service(service, env)


def start_platform(
    s: Stack,
    databases: Databases,
    *,
    with_points: bool = True,
    notifications: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> None:
    """NATS, each service on its freshly migrated database (and identity's first admin), the gateway.

    `notifications`, when given, starts the notifications service too, with these settings added."""
    s.start_nats()
    start_identity(s, databases)
    services = [
        ("blocks", {"GOV_DATABASE_URL": databases.url("blocks")}),
        ("tickets", tickets_env_for(databases.url("tickets"))),
    ]
    if with_points:
        services.append(("points", {"GOV_DATABASE_URL": databases.url("points")}))
    for service, service_env in services:
        start_migrated(s, service, service_env)
    if notifications is not None:
        s.start_service(
            "notifications", notifications_env(s, databases.url("notifications"), **notifications)
        )
    s.start_gateway(env=gateway_env)


@pytest.fixture(scope="session")
def mail_sink() -> Iterator[MailSink]:
    """The SMTP server the session's notifications service sends e-mail to."""
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def sms_gateway() -> Iterator[Robot]:
    """The HTTP SMS provider the session's notifications service posts text messages to."""
    yield from serve(Robot([200]))


@pytest.fixture(scope="session")
def stack(
    databases: Databases, mail_sink: MailSink, sms_gateway: Robot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack_of_its_own(tmp_path_factory, "stack") as s:
        mail = {
            "GOV_SMTP_HOST": "127.0.0.1",
            "GOV_SMTP_PORT": str(mail_sink.port),
            "GOV_NOTIFICATIONS_SMS_PROVIDER": "http",
            "GOV_NOTIFICATIONS_SMS_HTTP_URL": sms_gateway.url,
        }
        # Short SSE keep-alives, so a test sees them without waiting the production 15 s.
        gateway = {"GOV_CORS_ORIGINS": CORS_ORIGIN, "GOV_SSE_HEARTBEAT_SECONDS": "1"}
        start_platform(s, databases, notifications=mail, gateway_env=gateway)
        yield s


@pytest_asyncio.fixture(scope="session")
async def identity(stack: Stack) -> AsyncIterator[IdentityClient]:
    client = await IdentityClient(stack.addrs["identity"]).start()
    yield client
    await client.close()


def _client(service: str, stub: Callable[[grpc.aio.Channel], object]) -> Any:
    """A session fixture named `service`: a stub of the session stack's service."""

    async def client(stack: Stack) -> AsyncIterator[object]:
        channel = grpc.aio.insecure_channel(stack.addrs[service])
        yield stub(channel)
        await channel.close()

    return pytest_asyncio.fixture(client, scope="session", name=service)


blocks = _client("blocks", BlocksStub)
tickets = _client("tickets", TicketsStub)
points = _client("points", PointsStub)
notifications = _client("notifications", NotificationsStub)


@pytest_asyncio.fixture
async def village(blocks: BlocksStub, identity: IdentityClient) -> Village:
    """A fresh village (blocks, residents, staff) for one points test."""
    return await make_village(blocks, identity)


@pytest_asyncio.fixture(scope="module")
async def world(blocks: BlocksStub, tickets: TicketsStub, identity: IdentityClient) -> World:
    """A street with blocks, units, staff and a category, made once per test module."""
    return await make_world(blocks, tickets, identity)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway's HTTP API."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.nodeid:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PostgreSQL required, a skipped PostgreSQL test fails the run instead of passing quietly."""
    if os.environ.get("GOV_TEST_REQUIRE_POSTGRES") == "1" and _skipped_postgres:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: {len(_skipped_postgres)} PostgreSQL tests were skipped:", red=True)
            for nodeid in _skipped_postgres[:20]:
                reporter.write_line(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
