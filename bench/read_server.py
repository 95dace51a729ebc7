"""What one database read adds to a gRPC server's CPU per call, by the pool it comes from.

    .venv/bin/python bench/read_server.py [--calls 16000] [--json OUT]

A grpc.aio server on uvloop (as the services run) answers `grpc.health.v1.Health/Check` in a process
of its own, in four modes: from memory (the echo of bench/ceiling.py), after one single-row SELECT
on a connection from govkit.pgpool (the hot reads' pool), after the same SELECT on a connection
from asyncpg's own Pool (no reset query, as the hot reads used it before), and the pgpool read
behind the services' own interceptor (govkit.grpc_server.PlatformInterceptor: the caller's bearer
token verified, the principal bound, the call counted and timed). A client in this process makes
the calls, 16 at a time, with a signed access token. Each line is the server's CPU per call (user +
system, from /proc), so the difference between two lines is what the read, its pool or the
interceptor costs the server.
PostgreSQL on 127.0.0.1:5432 (database `test`); skipped when it does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import cast

import asyncpg
import grpc
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._common import HOST, PG_ADMIN_DB, PG_PORT, PG_USER, add_json, write_json
from govkit.auth.tokens import TokenVerifier
from govkit.devstack import free_port, wait_for_port
from govkit.grpc_server import PlatformInterceptor
from govkit.pgpool import ConnectionPool
from tests.support.tokens import StaticJwks, access_token

SQL = "SELECT oid, nspname FROM pg_namespace WHERE oid = $1"
DSN = f"postgresql://{PG_USER}@{HOST}:{PG_PORT}/{PG_ADMIN_DB}"
INTERCEPTED = "pgpool+interceptor"
MODES = ("memory", "govkit.pgpool", "asyncpg Pool", INTERCEPTED)
CONCURRENCY = 16


async def _serve(port: int, mode: str, public_pem: bytes) -> None:
    ours = ConnectionPool(lambda: asyncpg.connect(DSN), 4)

    async def no_reset(_conn: object) -> None:
        pass

    theirs = await asyncpg.create_pool(DSN, min_size=0, max_size=4, reset=no_reset)

    class Reading(health_pb2_grpc.HealthServicer):
        async def Check(
            self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
        ) -> health_pb2.HealthCheckResponse:
            if mode in ("govkit.pgpool", INTERCEPTED):
                conn = await ours.acquire()
                try:
                    await conn.fetch(SQL, 11)
                finally:
                    ours.release(conn)
            elif mode == "asyncpg Pool":
                conn = await theirs.acquire(timeout=30)
                try:
                    await conn.fetch(SQL, 11)
                finally:
                    await theirs.release(conn)
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    interceptors = []
    if mode == INTERCEPTED:
        public_key = cast(ec.EllipticCurvePublicKey, serialization.load_pem_public_key(public_pem))
        interceptors.append(PlatformInterceptor(TokenVerifier(StaticJwks(public_key)), ()))
    server = grpc.aio.server(interceptors=interceptors)
    health_pb2_grpc.add_HealthServicer_to_server(Reading(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _calls(port: int, count: int, token: str) -> None:
    metadata = (("authorization", f"Bearer {token}"), ("x-request-id", uuid.uuid4().hex))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def caller(n: int) -> None:
            for _ in range(n):
                await stub.Check(health_pb2.HealthCheckRequest(), metadata=metadata)

        await caller(200)  # connections opened, statements prepared
        await asyncio.gather(*(caller(count // CONCURRENCY) for _ in range(CONCURRENCY)))


def measure(mode: str, calls: int, key: ec.EllipticCurvePrivateKey, folder: Path) -> float:
    port = free_port()
    public = folder / "public.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    argv = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--public-key", str(public)]
    server = subprocess.Popen(argv)
    token = access_token(key, "users/bench", ttl=600)
    try:
        wait_for_port(port, 15, server)
        uvloop.run(_calls(port, 200, token))  # warm up the server's pool
        before = _cpu_seconds(server.pid)
        started = time.perf_counter()
        uvloop.run(_calls(port, calls, token))
        elapsed = time.perf_counter() - started
        used = _cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(10)
    per_call = used / (calls + 200) * 1e6
    print(f"server    {mode:18} {per_call:6.0f} us CPU per call   {calls / elapsed:7.0f} calls/s")
    return per_call


async def _reachable() -> None:
    await (await asyncpg.connect(DSN, timeout=5)).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=16000, help="timed calls per mode")
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--public-key", type=Path, help=argparse.SUPPRESS)
    add_json(parser)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve(args.port, args.serve, args.public_key.read_bytes()))
        return
    try:
        asyncio.run(_reachable())
    except OSError:
        print("skipped: PostgreSQL does not answer on 127.0.0.1:5432")
        return
    key = ec.generate_private_key(ec.SECP256R1())
    with tempfile.TemporaryDirectory(prefix="read-server-") as folder:
        per_call = {mode: measure(mode, args.calls, key, Path(folder)) for mode in MODES}
    write_json(args.json, {"server_cpu_us_per_call": per_call})


if __name__ == "__main__":
    main()
