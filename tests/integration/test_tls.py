"""TLS from mounted files (govkit.tls): gRPC between components, NATS, and PostgreSQL's SSL context.

A stack of its own (NATS with TLS, identity and blocks serving TLS, the gateway calling them over
TLS) with a throw-away CA made here. Tokens are still checked on every call over TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import nats
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpc_health.v1.health_pb2_grpc import HealthStub
from sqlalchemy import literal_column, select, text

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from govkit import bus, channels
from govkit.db import Database, make_engine
from govkit.devstack import REPO, Stack, free_port, nats_server_binary, wait_for_port, wait_serving
from govkit.hotreads import DatabaseUnavailable, HotRead
from tests.conftest import STACK_ENV, identity_env, migrate_identity
from tests.support.databases import Databases
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that signed nothing here


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(path: Path, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and one certificate for 127.0.0.1 and localhost, shaped like cert-manager's Secret."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca(folder / "ca.crt", "gov test CA")
    _ca(folder / "other-ca.crt", "someone else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(
        ca=folder / "ca.crt",
        cert=folder / "tls.crt",
        key=folder / "tls.key",
        other_ca=folder / "other-ca.crt",
    )


def tls_env(pki: Pki) -> dict[str, str]:
    """What the Helm chart sets when tls.grpc and tls.nats are enabled."""
    return {
        "GOV_TLS_GRPC_CERT_FILE": str(pki.cert),
        "GOV_TLS_GRPC_KEY_FILE": str(pki.key),
        "GOV_TLS_GRPC_CA_FILE": str(pki.ca),
        "GOV_TLS_NATS_CA_FILE": str(pki.ca),
    }


@dataclass
class TlsStack:
    stack: Stack
    health_ports: dict[str, int]
    nats_monitor: str  # nats-server's HTTP monitoring endpoint


@pytest.fixture(scope="module")
def tls_stack(databases: Databases, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    s = Stack(tmp_path_factory.mktemp("tls"), base_env={**STACK_ENV, **tls_env(pki)})
    try:
        # NATS that only speaks TLS; the streams are applied over TLS with the CA (govkit.streams).
        port = free_port()
        store = s.data_dir / "nats"
        store.mkdir(exist_ok=True)
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
        monitor = free_port()
        argv += ["--tls", "--tlscert", str(pki.cert), "--tlskey", str(pki.key), "-m", str(monitor)]
        proc = s.spawn("nats", argv, s.env())
        wait_for_port(port, 15, proc.popen)
        s.nats_url = f"nats://127.0.0.1:{port}"
        s.apply_streams()

        env = migrate_identity(s, databases.url("identity"))
        health_ports: dict[str, int] = {}
        for service, service_env in (
            ("identity", env),
            ("blocks", {"GOV_DATABASE_URL": databases.url("blocks")}),
        ):
            if service != "identity":
                s.run_command(service, "migrate", service_env)
            health_ports[service] = free_port()
            started = s.launch_service(
                service, {**service_env, "GOV_GRPC_HEALTH_PORT": str(health_ports[service])}, port=free_port()
            )
            # Readiness through the plaintext health port, as Kubernetes' gRPC probe asks.
            wait_serving(f"127.0.0.1:{health_ports[service]}", 30, started.popen)
        # Only identity and blocks run; the gateway reports the others as down and serves anyway.
        s.start_gateway()
        yield TlsStack(s, health_ports, f"http://127.0.0.1:{monitor}")
    finally:
        s.stop()


def tls_channel(addr: str, ca: Path) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=ca.read_bytes()))


@pytest_asyncio.fixture
async def identity_tls(tls_stack: TlsStack, pki: Pki) -> AsyncIterator[IdentityServiceStub]:
    async with tls_channel(tls_stack.stack.addrs["identity"], pki.ca) as channel:
        yield IdentityServiceStub(channel)


async def _admin_token(identity: IdentityServiceStub) -> str:
    reply = await identity.Login(
        identity_pb2.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD), timeout=10
    )
    return str(reply.access_token)


async def test_tls_client_with_the_ca_gets_answers(identity_tls: IdentityServiceStub) -> None:
    token = await _admin_token(identity_tls)
    caller = await identity_tls.GetCaller(
        identity_pb2.GetCallerRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
    )
    assert caller.principal.startswith("users/")


async def test_the_token_is_still_checked_on_every_tls_call(identity_tls: IdentityServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await identity_tls.GetCaller(identity_pb2.GetCallerRequest(), timeout=10)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as forged:
        await identity_tls.GetCaller(
            identity_pb2.GetCallerRequest(), metadata=(("authorization", "Bearer not.a.token"),), timeout=10
        )
    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_plaintext_client_to_the_tls_port_fails(tls_stack: TlsStack) -> None:
    async with grpc.aio.insecure_channel(tls_stack.stack.addrs["identity"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await IdentityServiceStub(channel).Login(
                identity_pb2.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD), timeout=3
            )
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_trusting_another_ca_fails(tls_stack: TlsStack, pki: Pki) -> None:
    async with tls_channel(tls_stack.stack.addrs["identity"], pki.other_ca) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await HealthStub(channel).Check(HealthCheckRequest(), timeout=3)  # type: ignore[attr-defined]
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_plaintext_health_port_answers_health_and_nothing_else(tls_stack: TlsStack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_stack.health_ports['identity']}") as channel:
        for service in ("", "liveness", "gov.identity.v1.IdentityService"):
            reply = await HealthStub(channel).Check(HealthCheckRequest(service=service), timeout=3)  # type: ignore[attr-defined]
            assert reply.status == HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as other:
            await IdentityServiceStub(channel).Login(
                identity_pb2.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD), timeout=3
            )
    assert other.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_service_verifies_tokens_with_keys_it_fetched_from_identity_over_tls(
    tls_stack: TlsStack, pki: Pki, identity_tls: IdentityServiceStub
) -> None:
    token = await _admin_token(identity_tls)
    # govkit.channels.to_peer: the same helper blocks used to reach identity.
    settings = _TlsSettings(str(pki.cert), str(pki.key), str(pki.ca), False)
    channel = channels.to_peer(tls_stack.stack.addrs["blocks"], settings)
    try:
        blocks = BlocksServiceStub(channel)
        await blocks.ListNodes(
            blocks_pb2.ListNodesRequest(page_size=1),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await blocks.ListNodes(blocks_pb2.ListNodesRequest(page_size=1), timeout=10)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close()


@dataclass(frozen=True)
class _TlsSettings:
    tls_grpc_cert_file: str | None
    tls_grpc_key_file: str | None
    tls_grpc_ca_file: str | None
    tls_grpc_client_auth: bool


def test_the_gateway_reaches_identity_over_tls(tls_stack: TlsStack) -> None:
    url = tls_stack.stack.gateway_url
    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    assert ready["checks"]["identity"] == "SERVING"
    assert ready["checks"]["signing_keys"] == "loaded"
    token = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": ADMIN_LOGIN, "password": ADMIN_PASSWORD}, timeout=10
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=10
    )
    assert me.status_code == 200, me.text
    assert httpx.get(f"{url}/api/v1/me", timeout=10).status_code == 401


async def test_nats_connects_with_the_ca_and_not_without(tls_stack: TlsStack, pki: Pki) -> None:
    nc = await bus.connect(tls_stack.stack.nats_url, "tls-test", ca_file=str(pki.ca))
    try:
        subject = f"tls.test.{uuid.uuid4().hex}"
        sub = await nc.subscribe(subject)
        await nc.publish(subject, b"over tls")
        message = await sub.next_msg(timeout=5)
        assert message.data == b"over tls"
    finally:
        await nc.close()
    for ca_file in (None, str(pki.other_ca)):
        with pytest.raises(Exception):  # noqa: B017 - nats-py raises the SSL error or its own
            nc = await nats.connect(
                tls_stack.stack.nats_url, allow_reconnect=False, connect_timeout=2, **bus.tls_options(ca_file)
            )
            await nc.close()


def test_services_and_the_gateway_hold_tls_connections_to_nats(tls_stack: TlsStack) -> None:
    """nats-server's own view: each component's connection is TLS (they connect in the background)."""
    wanted = {"gov-identity", "gov-blocks", "gov-gateway"}
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        conns = httpx.get(f"{tls_stack.nats_monitor}/connz", timeout=5).json().get("connections") or []
        seen = {c.get("name", ""): c.get("tls_version", "") for c in conns}
        if wanted <= seen.keys():
            break
        time.sleep(0.2)
    assert wanted <= seen.keys(), seen
    assert all(seen[name].startswith("1.") for name in wanted), seen


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "gen")])}
    return subprocess.run(  # our own interpreter and module
        [sys.executable, "-m", "services.identity", "serve"],
        env=full,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_incomplete_or_unreadable_tls_files_stop_the_start_naming_the_variable(
    databases: Databases, pki: Pki, tmp_path: Path
) -> None:
    base = identity_env(databases.url("identity"))
    half = _serve({**base, "GOV_TLS_GRPC_CERT_FILE": str(pki.cert), "GOV_TLS_GRPC_CA_FILE": str(pki.ca)})
    assert half.returncode == 2, half.stderr
    assert "GOV_TLS_GRPC_KEY_FILE" in half.stderr
    unreadable = _serve({**base, **tls_env(pki), "GOV_TLS_GRPC_CA_FILE": str(tmp_path / "absent.crt")})
    assert unreadable.returncode == 2, unreadable.stderr
    assert "GOV_TLS_GRPC_CA_FILE" in unreadable.stderr
    (tmp_path / "other.key").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    mismatched = _serve({**base, **tls_env(pki), "GOV_TLS_GRPC_KEY_FILE": str(tmp_path / "other.key")})
    assert mismatched.returncode == 2, mismatched.stderr
    assert "GOV_TLS_GRPC_KEY_FILE" in mismatched.stderr


async def test_postgres_connections_use_the_ca_context(databases: Databases, pki: Pki) -> None:
    """The CA file makes every connection demand TLS verified against it. The local PostgreSQL has
    ssl=off, so on PostgreSQL a connection with the CA is refused where one without it works: the
    context reaches asyncpg. SQLite has no TLS: the CA is ignored."""
    url = databases.url("identity")
    plain = make_engine(url)
    with_ca = make_engine(url, ssl_ca_file=str(pki.ca))
    try:
        async with plain.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        if databases.backend == "sqlite":
            async with with_ca.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            return
        async with plain.connect() as conn:
            assert (await conn.execute(text("SHOW ssl"))).scalar() == "off"
        with pytest.raises(Exception) as refused:  # asyncpg refuses the upgrade
            async with with_ca.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert "ssl" in str(refused.value).lower() or "SSL" in repr(refused.value)
        # The hot reads' own pool (govkit.hotreads) gets the same context.
        database = Database(url, ssl_ca_file=str(pki.ca))
        try:
            with pytest.raises(DatabaseUnavailable) as hot_refused:
                async with database.hot_reads() as reads:
                    await reads.all(HotRead(select(literal_column("1").label("one"))))
        finally:
            await database.close()
        assert "ssl" in repr(hot_refused.value.__cause__).lower()
    finally:
        await plain.dispose()
        await with_ca.dispose()


async def test_client_auth_requires_a_certificate_signed_by_the_ca(pki: Pki) -> None:
    """GOV_TLS_GRPC_CLIENT_AUTH: a caller without a client certificate cannot connect at all; one
    with this component's certificate (govkit.channels.to_peer sends it) can. A real server with the
    credentials govkit.tls makes for it."""
    from grpc_health.v1 import health
    from grpc_health.v1.health_pb2_grpc import add_HealthServicer_to_server

    from govkit import tls

    mutual = _TlsSettings(str(pki.cert), str(pki.key), str(pki.ca), True)
    credentials = tls.server_credentials(mutual)
    assert credentials is not None
    server = grpc.aio.server()
    add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        async with tls_channel(f"127.0.0.1:{port}", pki.ca) as anonymous:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await HealthStub(anonymous).Check(HealthCheckRequest(), timeout=3)  # type: ignore[attr-defined]
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        channel = channels.to_peer(f"127.0.0.1:{port}", mutual)
        try:
            reply = await HealthStub(channel).Check(HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
            assert reply.status == HealthCheckResponse.SERVING
        finally:
            await channel.close()
    finally:
        await server.stop(0)
