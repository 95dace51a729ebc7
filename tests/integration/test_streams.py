"""Streams owned by the deployment (issue 12, item 1): `python -m govkit.streams apply` creates and
updates them from govkit/streams.toml, idempotently and never losing data unless forced; services
only check that their streams exist, and are not ready (saying why) while one is missing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.api import StreamConfig

from govkit import streams
from govkit.devstack import Stack, free_port, wait_serving
from tests.conftest import stack_of_its_own, start_identity
from tests.support.databases import Databases

GIB = 1024**3
WEEK = 7 * 86400.0


@pytest.fixture(scope="module")
def own_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """NATS (streams applied as a deployment does) and identity: these tests change and delete streams."""
    with stack_of_its_own(tmp_path_factory, "streams") as s:
        s.start_nats()
        start_identity(s, databases, admin=False)
        yield s


async def _config(nats_url: str, name: str) -> StreamConfig:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jsm().stream_info(name)).config
    finally:
        await nc.close()


def _declarations_with(path: Path, stream: str, **changes: object) -> Path:
    """The packaged declarations as JSON (as the chart renders them), one stream changed."""
    import tomllib

    raw = tomllib.loads(streams.DECLARATIONS.read_text())
    raw["streams"][stream].update(changes)
    path.write_text(json.dumps(raw))
    return path


def _status(addr: str) -> int:
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return -1
        return int(reply.status)


def test_apply_is_idempotent(own_stack: Stack) -> None:
    # The stack applied the declarations when it started NATS: a second run changes nothing.
    out = own_stack.apply_streams()
    assert "no changes" in out, out
    assert own_stack.apply_streams("--dry-run").strip().endswith("no changes")


async def test_apply_refuses_a_lossy_change_unless_forced(own_stack: Stack, tmp_path: Path) -> None:
    shorter = _declarations_with(tmp_path / "streams.json", "TICKETS", max_age="1h", max_bytes=GIB)
    with pytest.raises(RuntimeError) as refused:
        own_stack.apply_streams("--file", str(shorter))
    assert "(1)" in str(refused.value)  # exit status 1: refused
    assert "TICKETS.max_age: 0s (unlimited) -> 1h" in str(refused.value)
    assert "TICKETS.max_bytes: -1 -> 1073741824" in str(refused.value)
    unchanged = await _config(own_stack.nats_url, "TICKETS")
    assert (unchanged.max_age or 0) == 0 and (unchanged.max_bytes or -1) == -1

    dropped = _declarations_with(tmp_path / "drop.json", "TICKETS", subjects=["tickets.v2.>"])
    with pytest.raises(RuntimeError, match=r"TICKETS\.subjects"):
        own_stack.apply_streams("--file", str(dropped))

    out = own_stack.apply_streams("--file", str(shorter), "--force")
    assert "TICKETS.max_age" in out
    forced = await _config(own_stack.nats_url, "TICKETS")
    assert forced.max_age == pytest.approx(3600) and forced.max_bytes == GIB
    # Back to the declaration: raising limits loses nothing and needs no force.
    out = own_stack.apply_streams()
    assert "TICKETS.max_age: 1h -> 0s (unlimited)" in out, out
    assert "no changes" in own_stack.apply_streams()


async def test_operator_settings_survive_a_service_restart(own_stack: Stack) -> None:
    """The incident of issue 12: a 7-day, 10 GiB stream came back unlimited after a service start."""
    nc = await nats.connect(own_stack.nats_url)
    try:
        js = nc.jetstream()
        current = (await js.stream_info("IDENTITY")).config
        current.max_age = WEEK
        current.max_bytes = 10 * GIB
        await js.update_stream(current)
    finally:
        await nc.close()
    proc = own_stack.proc("identity")
    port = int(own_stack.addrs["identity"].rsplit(":", 1)[1])
    env = own_stack.service_envs["identity"]
    own_stack.stop_proc(proc)
    own_stack.start_service("identity", env, port=port)
    await asyncio.sleep(1)  # past its stream check
    kept = await _config(own_stack.nats_url, "IDENTITY")
    assert kept.max_age == pytest.approx(WEEK)
    assert kept.max_bytes == 10 * GIB
    # The declaration is unlimited: going back to it loses nothing.
    assert "IDENTITY.max_age: 7d -> 0s (unlimited)" in own_stack.apply_streams()


async def test_a_service_without_its_stream_is_not_ready_and_says_why(own_stack: Stack) -> None:
    own_stack.stop_proc(own_stack.proc("identity"))
    nc = await nats.connect(own_stack.nats_url)
    try:
        await nc.jsm().delete_stream("IDENTITY")
    finally:
        await nc.close()
    port = free_port()
    proc = own_stack.launch_service("identity", own_stack.service_envs["identity"], port=port)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 6
    seen: set[int] = set()
    while time.monotonic() < deadline:
        seen.add(_status(addr))
        await asyncio.sleep(0.2)
    assert health_pb2.HealthCheckResponse.SERVING not in seen, seen
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen, seen
    log = proc.log_path.read_text()
    assert "IDENTITY" in log and "python -m govkit.streams apply" in log, log[-2000:]
    # Nothing made the stream meanwhile: services never create streams.
    nc = await nats.connect(own_stack.nats_url)
    try:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jsm().stream_info("IDENTITY")
    finally:
        await nc.close()
    assert "+ IDENTITY: create" in own_stack.apply_streams()
    wait_serving(addr, 15, proc.popen)
