"""Two per-request costs measured in one process, without a stack: the gateway's dispatch, and one
database read through SQLAlchemy against the same read through govkit.hotreads.

    .venv/bin/python bench/request_costs.py [--requests 4000] [--json OUT]

dispatch  The real gateway app (gateway.app.create_app) called as an ASGI app, no server and no
          network, for a few paths: its indexed dispatch (gateway.route_index), the same app with
          FastAPI's own dispatch over every route, and a bare FastAPI app with one route. The paths
          stop before any upstream call (no token: 401; no route: 404), so what differs is routing.
reads     One single-row SELECT on PostgreSQL (127.0.0.1:5432, database `test`; skipped when it
          does not answer): SQLAlchemy Core on an autocommit connection, as the services read, the
          same statement as a govkit.hotreads.HotRead on its pool (govkit.pgpool), and its SQL on
          asyncpg's own Pool, which the hot reads used before.

Each line is CPU microseconds per request (process time, so a busy machine inflates it less than
wall time). bench/README.md ("Fourth pass") has the results and what they led to.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import uvloop
from fastapi import FastAPI
from sqlalchemy import bindparam, literal_column, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench._common import HOST, PG_ADMIN_DB, PG_PORT, PG_USER, add_json, write_json
from gateway.app import create_app
from gateway.settings import GatewaySettings
from govkit.db import Database
from govkit.hotreads import HotRead

PROBE = "/bench/probe"


def _with_probe(app: FastAPI) -> FastAPI:
    @app.get(PROBE)
    async def probe() -> dict[str, int]:
        return {"ok": 1}

    return app


async def _asgi_get(app: Any, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _cpu_us(call: Callable[[], Awaitable[Any]], count: int) -> float:
    for _ in range(min(300, count)):
        await call()
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count * 1e6


async def dispatch(count: int) -> dict[str, float]:
    indexed = _with_probe(create_app(GatewaySettings()))
    whole = _with_probe(create_app(GatewaySettings()))
    whole.router.middleware_stack = whole.router.app  # FastAPI's own dispatch over every route
    bare = _with_probe(FastAPI())
    results: dict[str, float] = {}
    cases = [
        ("a route declared last (200)", PROBE),
        ("GET /api/v1/me without a token (401)", "/api/v1/me"),
        ("GET /api/v1/tickets/{id} without a token (401)", "/api/v1/tickets/x1"),
        ("a path no route matches (404)", "/no/such/path"),
    ]
    for label, path in cases:
        for name, app in (("indexed", indexed), ("full dispatch", whole), ("bare FastAPI", bare)):
            if name == "bare FastAPI" and path != PROBE and "404" not in label:
                continue
            statuses = {await _asgi_get(app, path)}
            results[f"{label} | {name}"] = await _cpu_us(lambda a=app, p=path: _asgi_get(a, p), count)
            print(f"dispatch  {label:48} {name:14} {results[f'{label} | {name}']:7.0f} us  {statuses}")
    return results


async def reads(count: int) -> dict[str, float]:
    url = f"postgresql+asyncpg://{PG_USER}@{HOST}:{PG_PORT}/{PG_ADMIN_DB}"
    probe = create_async_engine(url)
    try:
        async with probe.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except OSError:
        print("reads     skipped: PostgreSQL does not answer on 127.0.0.1:5432")
        return {}
    finally:
        await probe.dispose()
    statement = (
        select(literal_column("oid"), literal_column("nspname"))
        .select_from(text("pg_namespace"))
        .where(literal_column("oid") == bindparam("oid"))
    )
    read = HotRead(statement)
    db = Database(url, pool_size=4)

    async def core() -> None:
        async with db.read_engine.connect() as conn:
            (await conn.execute(statement, {"oid": 11})).all()

    async def hot() -> None:
        async with db.hot_reads() as reader:
            await reader.all(read, oid=11)

    # The hot reads' SQL on asyncpg's own Pool (no reset query either), as they ran before govkit.pgpool.
    sql = read.plan(db.engine.dialect).sql
    pool = await asyncpg.create_pool(url.replace("+asyncpg", ""), min_size=1, max_size=4, reset=_no_reset)

    async def asyncpg_pool() -> None:
        conn = await pool.acquire(timeout=30)
        try:
            await conn.fetch(sql, 11)
        finally:
            await pool.release(conn)

    results: dict[str, float] = {}
    cases = (
        ("SQLAlchemy Core, autocommit", core),
        ("govkit.hotreads", hot),
        ("its SQL on asyncpg's Pool", asyncpg_pool),
    )
    try:
        for name, call in cases:
            results[name] = await _cpu_us(call, count)
            print(f"reads     {name:48} {results[name]:7.0f} us")
    finally:
        await db.close()
        await pool.close()
    return results


async def _no_reset(_conn: object) -> None:
    pass


async def main(args: argparse.Namespace) -> None:
    payload = {"dispatch_cpu_us": await dispatch(args.requests), "read_cpu_us": await reads(args.requests)}
    write_json(args.json, payload)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="timed requests per case")
    add_json(parser)
    uvloop.run(main(parser.parse_args()))
