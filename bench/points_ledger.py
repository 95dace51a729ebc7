"""Benchmark the points ledger through gRPC: awards per second, and redemptions per second under
contention on one item; then `python -m services.points verify` proves every balance.

    .venv/bin/python bench/points_ledger.py [--backend sqlite|postgres] [--awards N]
                                            [--concurrency N] [--redeemers N] [--stock N] [--json OUT]

Starts the same system `make run` starts (bench/_stack.py: NATS, every service on fresh databases,
the gateway), then, untimed, builds a district with one block whose governor is assigned in blocks
(so every award makes the points service ask blocks for the governor's live rights, as in
production), a leader who publishes a reward indicator and a love-bank item, and --redeemers
residents who each log in. Passwords are hashed with cheap argon2 parameters: only setup logs in.

Phases (each timed separately):
- awards: --awards CreateAward calls by the governor, --concurrency at a time, spread over the
  residents (each call: a live staff check in blocks, then one transaction that locks the account,
  inserts the award, the entry, its lot and an outbox event).
- redemptions: every resident asks for one unit of an item with --stock units, all at once
  (exactly --stock succeed; the rest get FAILED_PRECONDITION).
Reported: calls/s, latency percentiles, refusals, CPU seconds per process; then the verify command's
verdict. Exits 1 if a call failed unexpectedly, the number of successful redemptions is not the
stock, or verify finds a problem; 2 if the stack could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from bench._common import add_backend, add_json, write_json
from bench._stack import (
    SHARED_CPU_NOTE,
    Monitor,
    cpu_line,
    identity_env,
    machine_info,
    percentile,
    run_monitored,
    run_on_stack,
)
from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from govkit.devstack import REPO, Stack

PASSWORD = "bench-resident-password"
# One block 0.01 degrees square near Xiangtan (GeoJSON).
SQUARE = json.dumps(
    {
        "type": "Polygon",
        "coordinates": [
            [[112.90, 27.85], [112.91, 27.85], [112.91, 27.86], [112.90, 27.86], [112.90, 27.85]]
        ],
    }
)


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def make_user(
    identity: IdentityServiceStub, admin: str, scope: str, n: int, roles=()
) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    phone = f"137{n:08d}"
    user = await identity.CreateUser(
        identity_pb2.CreateUserRequest(
            user=identity_pb2.User(phone=phone, display_name=f"居民{n}", scope=scope), password=PASSWORD
        ),
        metadata=md(admin),
    )
    for role, role_scope in roles:
        await identity.CreateRoleBinding(
            identity_pb2.CreateRoleBindingRequest(
                parent=user.name, role_binding=identity_pb2.RoleBinding(role=role, scope=role_scope)
            ),
            metadata=md(admin),
        )
    token = (await identity.Login(identity_pb2.LoginRequest(login=phone, password=PASSWORD))).access_token
    return user.name, token


async def setup(stack: Stack, admin_password: str, redeemers: int, stock: int) -> dict[str, Any]:
    ich = grpc.aio.insecure_channel(stack.addrs["identity"])
    bch = grpc.aio.insecure_channel(stack.addrs["blocks"])
    identity, blocks = IdentityServiceStub(ich), BlocksServiceStub(bch)
    admin = (
        await identity.Login(identity_pb2.LoginRequest(login="admin", password=admin_password))
    ).access_token
    for code, parent, kind in (
        ("bench", "", blocks_pb2.NODE_KIND_DISTRICT),
        ("street", "bench", blocks_pb2.NODE_KIND_STREET),
        ("community", "bench/street", blocks_pb2.NODE_KIND_COMMUNITY),
        ("b01", "bench/street/community", blocks_pb2.NODE_KIND_BLOCK),
    ):
        await blocks.CreateNode(
            blocks_pb2.CreateNodeRequest(
                node=blocks_pb2.Node(
                    code=code,
                    parent=parent,
                    kind=kind,
                    display_name=code,
                    boundary_geojson=SQUARE if kind == blocks_pb2.NODE_KIND_BLOCK else "",
                )
            ),
            metadata=md(admin),
        )
    block = "bench/street/community/b01"
    governor, governor_token = await make_user(identity, admin, block, 1)
    await blocks.AssignStaff(
        blocks_pb2.AssignStaffRequest(
            assignment=blocks_pb2.StaffAssignment(
                block=block, user=governor, role=blocks_pb2.STAFF_ROLE_GOVERNOR
            )
        ),
        metadata=md(admin),
    )
    _, leader_token = await make_user(identity, admin, "bench", 2, [(identity_pb2.ROLE_LEADER, "bench")])
    residents = await asyncio.gather(
        *(
            make_user(identity, admin, block, 100 + i, [(identity_pb2.ROLE_RESIDENT, block)])
            for i in range(redeemers)
        )
    )
    pch = grpc.aio.insecure_channel(stack.addrs["points"])
    points = PointsServiceStub(pch)
    indicator = await points.CreateIndicator(
        pb.CreateIndicatorRequest(
            indicator=pb.Indicator(
                node="bench", code="sorting", display_name="垃圾分类", kind=pb.INDICATOR_KIND_REWARD, points=5
            )
        ),
        metadata=md(leader_token),
    )
    point = await points.CreateExchangePoint(
        pb.CreateExchangePointRequest(exchange_point=pb.ExchangePoint(node=block, display_name="爱心超市")),
        metadata=md(leader_token),
    )
    item = await points.CreateItem(
        pb.CreateItemRequest(
            parent=point.name,
            item=pb.Item(display_name="洗衣液", kind=pb.ITEM_KIND_GOODS, price=5, stock=stock),
        ),
        metadata=md(leader_token),
    )
    for channel in (ich, bch, pch):
        await channel.close()
    return {
        "block": block,
        "governor": governor_token,
        "residents": list(residents),
        "indicator": indicator.name,
        "item": item.name,
    }


async def timed(calls: list, concurrency: int) -> tuple[float, list[float], dict[str, int]]:  # type: ignore[type-arg]
    """Run the calls `concurrency` at a time: (seconds, latencies in ms, outcome counts)."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            t0 = time.perf_counter()
            try:
                await call()
                outcome = "OK"
            except grpc.aio.AioRpcError as exc:
                outcome = exc.code().name
            latencies.append((time.perf_counter() - t0) * 1000)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, sorted(latencies), outcomes


async def run(args: argparse.Namespace, stack: Stack, admin_password: str, monitor) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    world = await setup(stack, admin_password, args.redeemers, args.stock)
    channel = grpc.aio.insecure_channel(stack.addrs["points"])
    points = PointsServiceStub(channel)
    residents = world["residents"]

    def award_call(i: int):  # type: ignore[no-untyped-def]
        name, _ = residents[i % len(residents)]
        request = pb.CreateAwardRequest(
            award=pb.Award(recipient=name, indicator=world["indicator"], node=world["block"]),
            request_id=f"bench-{i}-{uuid.uuid4().hex[:8]}",
        )
        return lambda: points.CreateAward(request, metadata=md(world["governor"]), timeout=60)

    def redeem_call(i: int):  # type: ignore[no-untyped-def]
        _, token = residents[i]
        request = pb.CreateRedemptionRequest(
            redemption=pb.Redemption(item=world["item"], quantity=1), request_id=f"redeem-{i}"
        )
        return lambda: points.CreateRedemption(request, metadata=md(token), timeout=60)

    result: dict[str, Any] = {}
    monitor.begin("awards")
    seconds, latencies, outcomes = await timed([award_call(i) for i in range(args.awards)], args.concurrency)
    monitor.end()
    result["awards"] = summary(seconds, latencies, outcomes)
    monitor.begin("redemptions")
    seconds, latencies, outcomes = await timed(
        [redeem_call(i) for i in range(len(residents))], len(residents)
    )
    monitor.end()
    result["redemptions"] = summary(seconds, latencies, outcomes)
    await channel.close()
    return result


def summary(seconds: float, latencies: list[float], outcomes: dict[str, int]) -> dict[str, Any]:
    calls = len(latencies)
    return {
        "calls": calls,
        "seconds": round(seconds, 2),
        "per_second": round(calls / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p90_ms": round(percentile(latencies, 90), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1) if latencies else 0.0,
        "outcomes": outcomes,
    }


def verify(stack: Stack) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "services.points", "verify"],
        env=stack.env(GOV_DATABASE_URL=stack.service_envs["points"]["GOV_DATABASE_URL"]),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, (done.stdout.strip().splitlines() or [done.stderr.strip()])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend(parser)
    parser.add_argument("--awards", type=int, default=2000, help="CreateAward calls (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="awards in flight at once (default 16)")
    parser.add_argument(
        "--redeemers", type=int, default=200, help="residents redeeming at once (default 200)"
    )
    parser.add_argument("--stock", type=int, default=50, help="units of the contended item (default 50)")
    add_json(parser)
    args = parser.parse_args()
    admin_password = secrets.token_urlsafe(16)
    databases: list[str] = []

    def measure(stack: Stack, _: Path) -> int:
        result, monitor = run_monitored(
            stack, args.backend, databases, lambda monitor: run(args, stack, admin_password, monitor)
        )
        return report(args, result, monitor, verify(stack))

    return run_on_stack(
        "bench-points-",
        args.backend,
        measure,
        admin_password=admin_password,
        service_env={"identity": identity_env()},
        databases=databases,
    )


def report(
    args: argparse.Namespace, result: dict[str, Any], monitor: Monitor, verified: tuple[int, str]
) -> int:
    code, verdict = verified
    awards, redemptions = result["awards"], result["redemptions"]
    machine = machine_info()
    print(f"\npoints ledger, backend {args.backend}\n{SHARED_CPU_NOTE.format(cpus=machine['cpu_count'])}")
    header = ("phase", "calls", "/s", "p50 ms", "p90 ms", "p99 ms", "max ms")
    print(f"{header[0]:<12} " + " ".join(f"{h:>8}" for h in header[1:]) + "  outcomes")
    for phase, r in (("awards", awards), ("redemptions", redemptions)):
        print(
            f"{phase:<12} {r['calls']:>8} {r['per_second']:>8} {r['p50_ms']:>8} {r['p90_ms']:>8} "
            f"{r['p99_ms']:>8} {r['max_ms']:>8}  {r['outcomes']}"
        )
    print("\nCPU % of one core, per phase:")
    for phase in ("awards", "redemptions"):
        print(f"  {phase:<12} {cpu_line(monitor.cpu.get(phase, {}))}")
    print(f"\nverify: {verdict}")
    ok = (
        code == 0
        and set(awards["outcomes"]) == {"OK"}
        and redemptions["outcomes"].get("OK", 0) == args.stock
        and set(redemptions["outcomes"]) <= {"OK", "FAILED_PRECONDITION"}
    )
    payload = {
        "args": vars(args) | {"json": str(args.json)},
        "machine": machine,
        "results": result,
        "cpu": monitor.cpu,
        "verify": verdict,
    }
    write_json(args.json, payload)
    print("OK" if ok else "FAILED: see the outcomes and verify above")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
