"""Benchmark ticket creation through the gateway, end to end: HTTP 201, then the event on JetStream.

    .venv/bin/python bench/tickets_create.py [--backend sqlite|postgres] [--duration SECONDS | --count N]
                                             [--concurrency N] [--json OUT]

Starts NATS, identity, blocks, tickets and the gateway as real processes on fresh databases (the
same `govkit.devstack.Stack` as `make run`, via bench/_stack.py), then, untimed, builds a street
(a district/street/community with a grid of blocks that have boundaries), a rapid-response unit, a
category (working-hours SLA, one required string attribute) and residents who each log in through
the gateway. Passwords are hashed with cheap argon2 parameters, because only setup logs in.

Before the timed phase it subscribes to `tickets.v1.ticket.created` with a JetStream ordered
consumer (new messages only), in a thread of its own, and records when each event arrives. Then
--concurrency keep-alive clients POST /api/v1/tickets as residents (a point inside the resident's
block, which the tickets service resolves with the blocks service's LocateBlock; title,
description, the attribute, an Idempotency-Key per request) for --duration seconds or --count
tickets. Reported: tickets/s, HTTP latency, end-to-end latency (request sent -> event received),
events missing and duplicated, errors; then a short idempotency phase (retries of earlier requests
with their key; pairs of identical requests sent at once); CPU seconds and peak RSS per process.

Exits 1 if more than 1% of the requests failed, an event is missing or duplicated, an
idempotent retry got another ticket, or a process died; 2 if the stack could not be started.
See bench/README.md for how to read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import itertools
import math
import random
import secrets
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
from nats.js.api import DeliverPolicy

from bench._common import add_backend, add_json, write_json
from bench._stack import (
    CHEAP_ARGON2,
    MACHINE,
    OTHER,
    POSTGRES,
    REQUEST_TIMEOUT,
    SHARED_CPU_NOTE,
    Monitor,
    admin_token,
    dead_processes,
    fmt1,
    identity_env,
    logs_on_failure,
    machine_info,
    monitor_for,
    other_cpu_warnings,
    percentile,
    pg_sessions,
    print_logs,
    print_warnings,
    r1,
    run_on_stack,
)
from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.tickets.v1 import tickets_pb2 as tpb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from govkit.events import parse_event
from tests.support.blocks import make_tree, point, square
from tests.support.identity import md, role
from tests.support.tickets import hours

EVENT_SUBJECT = "tickets.v1.ticket.created"
PHASE = "create"

MAX_DURATION = 120.0  # seconds, the timed phase's hard cap
MAX_COUNT = 100_000
MAX_CONCURRENCY = 256
DEFAULT_DURATION = 20.0
EVENT_WAIT = 10.0  # seconds to wait for outstanding events after the phase
SETTLE_SECONDS = 2.0
ERROR_BUDGET = 0.01

# Only setup logs in, so hashing need not cost what it does in production.
RESIDENT_PASSWORD = "bench-" + secrets.token_urlsafe(12)
ATTRIBUTE = "building"


# ----------------------------------------------------------------------------- setup


@dataclass
class Block:
    path: str
    col: int
    row: int


@dataclass
class Resident:
    user: str  # users/{id}
    phone: str
    block: Block
    token: str = ""


@dataclass
class World:
    street: str
    blocks: list[Block]
    unit: str
    category: str
    residents: list[Resident]
    seconds: float = 0.0


async def build_world(stack: Stack, admin: str, args: argparse.Namespace) -> World:
    """Street, blocks with boundaries, a unit, a category and logged-in residents (not timed)."""
    t0 = time.monotonic()
    channels = {
        name: grpc.aio.insecure_channel(stack.addrs[name]) for name in ("identity", "blocks", "tickets")
    }
    try:
        blocks = BlocksServiceStub(channels["blocks"])
        tickets = TicketsServiceStub(channels["tickets"])
        identity = IdentityServiceStub(channels["identity"])
        side = math.ceil(math.sqrt(args.blocks))
        grid = {f"b{i:03d}": (i % side, i // side) for i in range(args.blocks)}
        street, community = await make_tree(blocks, admin, {code: square(*cr) for code, cr in grid.items()})
        block_list = [Block(f"{community}/{code}", col, row) for code, (col, row) in grid.items()]
        # The blocks service must place a point in each block where this script expects it.
        for block in block_list:
            lat, lng = point(block.col + 0.5, block.row + 0.5)
            found = await blocks.LocateBlock(
                blocks_pb2.LocateBlockRequest(lat=lat, lng=lng), metadata=md(admin)
            )
            if found.block.path != block.path:
                raise RuntimeError(f"LocateBlock put the centre of {block.path} in {found.block.path}")

        unit = f"rapid-{uuid.uuid4().hex[:6]}"
        await tickets.CreateUnit(
            tpb.CreateUnitRequest(
                unit=tpb.Unit(
                    code=unit,
                    display_name="万楼街道快速处置中心",
                    kind=tpb.UNIT_KIND_RAPID_RESPONSE,
                    node=street,
                )
            ),
            metadata=md(admin),
        )
        category = f"lift-{uuid.uuid4().hex[:6]}"
        await tickets.CreateCategory(
            tpb.CreateCategoryRequest(
                category=tpb.Category(
                    code=category,
                    display_name="电梯故障",
                    group="物业与电梯",
                    keywords=["电梯", "困人"],
                    default_center=tpb.UNIT_KIND_RAPID_RESPONSE,
                    priority=tpb.PRIORITY_HIGH,
                    matter_class=tpb.MATTER_CLASS_CO_HANDLED,
                    kind=tpb.TICKET_KIND_GENERAL,
                    attributes=[
                        tpb.AttributeDefinition(
                            code=ATTRIBUTE, display_name="楼栋", type=tpb.ATTRIBUTE_TYPE_STRING, required=True
                        )
                    ],
                    sla=tpb.SlaPolicy(
                        acknowledge_within=hours(2),
                        resolve_within=hours(16),
                        clock=tpb.SLA_CLOCK_WORKING_HOURS,
                    ),
                )
            ),
            metadata=md(admin),
        )

        gate = asyncio.Semaphore(8)

        async def make_resident(index: int) -> Resident:
            block = block_list[index % len(block_list)]
            phone = f"139{20_000_001 + index:08d}"
            async with gate:
                user = await identity.CreateUser(
                    identity_pb2.CreateUserRequest(
                        user=identity_pb2.User(
                            phone=phone, display_name=f"居民{index:03d}", scope=block.path
                        ),
                        password=RESIDENT_PASSWORD,
                    ),
                    metadata=md(admin),
                )
                await identity.CreateRoleBinding(
                    identity_pb2.CreateRoleBindingRequest(
                        parent=user.name,
                        role_binding=identity_pb2.RoleBinding(role=role("resident"), scope=block.path),
                    ),
                    metadata=md(admin),
                )
            return Resident(user.name, phone, block)

        residents = await asyncio.gather(*(make_resident(i) for i in range(args.users)))
    finally:
        for channel in channels.values():
            await channel.close()

    # Each resident logs in through the gateway, as an app would.
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as client:
        for resident in residents:
            response = await client.post(
                "/api/v1/auth/token", data={"username": resident.phone, "password": RESIDENT_PASSWORD}
            )
            response.raise_for_status()
            resident.token = response.json()["access_token"]
    return World(street, block_list, unit, category, list(residents), time.monotonic() - t0)


# ----------------------------------------------------------------------------- events


class EventCollector:
    """A JetStream ordered consumer of ticket-created events on a thread and event loop of its own.

    Its own loop, so that a busy load generator does not delay the arrival times: for each event it
    records the monotonic and wall-clock arrival time, keyed by the event's resource (`tickets/{id}`),
    and the event's own time (stamped in the tickets service when the event is built).
    """

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.arrivals: dict[str, list[float]] = {}  # resource -> monotonic arrival times
        self.arrival_wall: dict[str, float] = {}  # resource -> wall-clock time of the first arrival
        self.built_wall: dict[str, float] = {}  # resource -> the event's `time` (epoch seconds)
        self.received = 0
        self.bad = 0  # messages that were not a parseable event
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="event-collector", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the JetStream subscription was not ready in time")
        if self._error is not None:
            raise RuntimeError(f"JetStream subscription failed: {self._error!r}") from self._error

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(), or ignored at shutdown
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(self.nats_url, name="bench-tickets-create", connect_timeout=5)
        try:
            sub = await nc.jetstream().subscribe(
                EVENT_SUBJECT, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW, cb=self._on_msg
            )
            self._ready.set()
            await self._stop.wait()
            await sub.unsubscribe()
        finally:
            await nc.close()

    async def _on_msg(self, msg: Any) -> None:
        arrived, wall = time.monotonic(), time.time()
        try:
            event = parse_event(msg.data)
        except Exception:
            with self._lock:
                self.bad += 1
            return
        with self._lock:
            self.received += 1
            times = self.arrivals.setdefault(event.resource, [])
            times.append(arrived)
            if len(times) == 1:
                self.arrival_wall[event.resource] = wall
                self.built_wall[event.resource] = event.time.seconds + event.time.nanos / 1e9

    def first_arrival(self, resource: str) -> float | None:
        with self._lock:
            times = self.arrivals.get(resource)
            return times[0] if times else None

    async def wait_for(self, resources: set[str], seconds: float) -> float:
        """Wait until every resource has an event or the time is up; returns the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            with self._lock:
                if all(r in self.arrivals for r in resources):
                    break
            await asyncio.sleep(0.02)
        return time.monotonic() - t0

    def snapshot(self) -> dict[str, list[float]]:
        with self._lock:
            return {k: list(v) for k, v in self.arrivals.items()}


# ----------------------------------------------------------------------------- load


@dataclass
class Sample:
    worker: int
    resident: Resident
    key: str
    body: dict[str, Any]
    sent: float = 0.0  # monotonic
    sent_wall: float = 0.0
    latency: float = 0.0
    status: int | None = None
    error: str | None = None  # kind, for non-201 answers and transport errors
    resource: str | None = None  # tickets/{id} from a 201
    node: str | None = None


def new_sample(world: World, worker: int, resident: Resident, rng: random.Random) -> Sample:
    block = resident.block
    lat, lng = point(block.col + rng.uniform(0.05, 0.95), block.row + rng.uniform(0.05, 0.95))
    building = rng.randint(1, 30)
    body = {
        "category": world.category,
        "title": f"{building}栋电梯停在{rng.randint(2, 18)}楼不动",
        "description": "电梯门打不开,里面好像有人,物业电话打不通",
        "location": {"latitude": lat, "longitude": lng, "address": f"{building}栋{rng.randint(1, 4)}单元"},
        "attributes": [{"code": ATTRIBUTE, "values": [f"{building}栋"]}],
    }
    return Sample(worker, resident, str(uuid.uuid4()), body)


async def send(client: httpx.AsyncClient, sample: Sample) -> Sample:
    """POST the ticket; fills in the timing, the status and the ticket's id."""
    headers = {"Authorization": f"Bearer {sample.resident.token}", "Idempotency-Key": sample.key}
    sample.sent_wall = time.time()
    sample.sent = time.monotonic()
    start = time.perf_counter()
    try:
        response = await client.post("/api/v1/tickets", json=sample.body, headers=headers)
        sample.latency = time.perf_counter() - start
        sample.status = response.status_code
        if response.status_code == 201:
            ticket = response.json()
            sample.resource = ticket["name"]
            sample.node = ticket.get("node")
            if sample.node != sample.resident.block.path:
                sample.error = "wrong block"
        else:
            sample.error = f"HTTP {response.status_code}"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        sample.latency = time.perf_counter() - start
        sample.error = type(exc).__name__
    return sample


def client_for(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,  # never through a proxy: straight to 127.0.0.1
    )


@dataclass
class CreatePhase:
    concurrency: int
    duration_target: float
    count_target: int | None
    elapsed: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    warmup: list[Sample] = field(default_factory=list)
    capped: bool = False
    event_wait: float = 0.0
    pg_sessions: dict[str, int] = field(default_factory=dict)  # service -> connections opened


async def run_create(
    args: argparse.Namespace, world: World, base_url: str, monitor: Monitor, rng: random.Random
) -> CreatePhase:
    phase = CreatePhase(args.concurrency, args.duration, args.count)
    clients = [client_for(base_url) for _ in range(args.concurrency)]
    residents = world.residents
    left = args.count if args.count is not None else MAX_COUNT
    try:
        # Warm-up (not timed): one ticket per client opens its keep-alive connection.
        phase.warmup = await asyncio.gather(
            *(
                send(c, new_sample(world, i, residents[i % len(residents)], rng))
                for i, c in enumerate(clients)
            )
        )
        monitor.begin(PHASE)
        t0 = time.monotonic()
        deadline = t0 + args.duration

        async def worker(index: int, client: httpx.AsyncClient) -> None:
            nonlocal left
            for iteration in itertools.count(1):
                if time.monotonic() >= deadline:
                    return
                if left <= 0:
                    phase.capped = True
                    return
                left -= 1
                resident = residents[(index + iteration * args.concurrency) % len(residents)]
                phase.samples.append(await send(client, new_sample(world, index, resident, rng)))

        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
        phase.elapsed = time.monotonic() - t0
        monitor.end()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return phase


@dataclass
class IdempotencyPhase:
    retries: int = 0
    retries_matched: int = 0
    retry_errors: dict[str, int] = field(default_factory=dict)
    retry_latencies: list[float] = field(default_factory=list)
    pairs: int = 0
    pairs_matched: int = 0
    pair_errors: dict[str, int] = field(default_factory=dict)
    pair_resources: set[str] = field(default_factory=set)


async def run_idempotency(
    args: argparse.Namespace, world: World, base_url: str, created: list[Sample], rng: random.Random
) -> IdempotencyPhase:
    """Retries of earlier creates with their key, then identical pairs sent at the same moment."""
    result = IdempotencyPhase()
    step = max(1, len(created) // max(1, args.retries))
    originals = created[::step][: args.retries]
    first, second = client_for(base_url), client_for(base_url)
    try:
        for original in originals:
            retry = await send(first, Sample(0, original.resident, original.key, original.body))
            result.retries += 1
            result.retry_latencies.append(retry.latency)
            if retry.resource is not None and retry.resource == original.resource:
                result.retries_matched += 1
            else:
                kind = retry.error or "another ticket"
                result.retry_errors[kind] = result.retry_errors.get(kind, 0) + 1
        for i in range(args.pairs):
            one = new_sample(world, 0, world.residents[i % len(world.residents)], rng)
            two = Sample(1, one.resident, one.key, one.body)
            await asyncio.gather(send(first, one), send(second, two))
            result.pairs += 1
            if one.resource is not None and one.resource == two.resource:
                result.pairs_matched += 1
            else:
                kind = one.error or two.error or "two tickets"
                result.pair_errors[kind] = result.pair_errors.get(kind, 0) + 1
            result.pair_resources |= {s.resource for s in (one, two) if s.resource}
    finally:
        await first.aclose()
        await second.aclose()
    return result


# ----------------------------------------------------------------------------- report


def latency_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    ms = 1000.0
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered) * ms, 2) if ordered else 0.0,
        "p50": round(percentile(ordered, 50) * ms, 2),
        "p90": round(percentile(ordered, 90) * ms, 2),
        "p99": round(percentile(ordered, 99) * ms, 2),
        "max": round(ordered[-1] * ms, 2) if ordered else 0.0,
    }


def build_report(
    args: argparse.Namespace,
    world: World,
    create: CreatePhase,
    idem: IdempotencyPhase,
    events: EventCollector,
    monitor: Monitor,
    rss: dict[str, dict[str, float | None]],
) -> dict[str, Any]:
    samples = create.samples
    created = [s for s in samples if s.resource is not None]
    ok = [s for s in samples if s.error is None]
    error_kinds: dict[str, int] = {}
    for s in samples:
        if s.error:
            error_kinds[s.error] = error_kinds.get(s.error, 0) + 1
    errors = len(samples) - len(ok)

    arrivals = events.snapshot()
    e2e, send_to_built, built_to_received = [], [], []
    missing = 0
    before_response = 0
    for s in created:
        times = arrivals.get(s.resource or "")
        if not times:
            missing += 1
            continue
        e2e.append(times[0] - s.sent)
        if times[0] <= s.sent + s.latency:
            before_response += 1
        built = events.built_wall.get(s.resource or "")
        received = events.arrival_wall.get(s.resource or "")
        if built is not None and received is not None:
            send_to_built.append(built - s.sent_wall)
            built_to_received.append(received - built)
    expected = {s.resource for s in (*created, *create.warmup) if s.resource} | idem.pair_resources
    duplicates = sum(len(times) - 1 for times in arrivals.values() if len(times) > 1)
    unexpected = sorted(r for r in arrivals if r not in expected)
    warmup_missing = sum(1 for s in create.warmup if s.resource and s.resource not in arrivals)
    pair_missing = sum(1 for r in idem.pair_resources if r not in arrivals)

    seconds = int(create.elapsed) + 1
    timeline = [{"second": i, "created": 0, "errors": 0, "max_ms": 0.0} for i in range(seconds)]
    t0 = min((s.sent for s in samples), default=0.0)
    for s in samples:
        row = timeline[min(int(s.sent + s.latency - t0), seconds - 1)]
        row["created" if s.error is None else "errors"] += 1
        row["max_ms"] = max(row["max_ms"], round(s.latency * 1000, 1))

    cpu_s = monitor.cpu_seconds.get(PHASE, {})
    processes = {}
    for name in [*monitor.procs, *([POSTGRES] if args.backend == "postgres" else []), OTHER, MACHINE]:
        entry = {k: r1(v.get(name)) for k, v in rss.items()}
        used = cpu_s.get(name)
        entry["cpu_s"] = None if used is None else round(used, 2)
        entry["cpu_percent"] = r1(monitor.cpu.get(PHASE, {}).get(name))
        entry["cpu_ms_per_ticket"] = (
            round(used * 1000 / len(created), 2) if used is not None and created else None
        )
        processes[name] = entry

    machine = machine_info()
    return {
        "benchmark": "tickets_create",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "backend": args.backend,
        "machine": machine,
        "note": SHARED_CPU_NOTE.format(cpus=machine["cpu_count"]),
        "argon2": {**CHEAP_ARGON2, "note": "cheap parameters, for setup speed: logins are not measured"},
        "setup": {
            "blocks": len(world.blocks),
            "residents": len(world.residents),
            "category": world.category,
            "unit": world.unit,
            "seconds": round(world.seconds, 2),
        },
        "create": {
            "concurrency": create.concurrency,
            "duration_target_s": create.duration_target,
            "count_target": create.count_target,
            "capped_by_count": create.capped,
            "elapsed_s": round(create.elapsed, 3),
            "requests": len(samples),
            "created": len(created),
            "errors": errors,
            "error_rate": round(errors / len(samples), 5) if samples else 1.0,
            "error_kinds": error_kinds,
            "warmup_errors": sum(1 for s in create.warmup if s.error),
            "tickets_per_s": round(sum(1 for s in samples if s.status == 201) / create.elapsed, 2)
            if create.elapsed
            else 0.0,
            "http_latency_ms": latency_summary([s.latency for s in samples]),
            "e2e_latency_ms": latency_summary(e2e),
            "send_to_event_built_ms": latency_summary(send_to_built),
            "event_built_to_received_ms": latency_summary(built_to_received),
            "events_before_http_response": before_response,
            "postgres_sessions_opened": create.pg_sessions,
            "per_second": timeline,
        },
        "events": {
            "subject": EVENT_SUBJECT,
            "received": events.received,
            "missing": missing,
            "missing_warmup": warmup_missing,
            "missing_pairs": pair_missing,
            "duplicates": duplicates,
            "unexpected": len(unexpected),
            "unparseable": events.bad,
            "waited_after_phase_s": round(create.event_wait, 2),
        },
        "idempotency": {
            "retries": idem.retries,
            "retries_matched": idem.retries_matched,
            "retry_errors": idem.retry_errors,
            "retry_latency_ms": latency_summary(idem.retry_latencies),
            "concurrent_pairs": idem.pairs,
            "pairs_matched": idem.pairs_matched,
            "pair_errors": idem.pair_errors,
        },
        "processes": processes,
        "warnings": other_cpu_warnings(monitor, [PHASE]),
    }


def write_samples(path: Path, create: CreatePhase, events: EventCollector) -> None:
    """One row per timed request: when it was sent, its answer, and when its event came."""
    arrivals = events.snapshot()
    t0 = min((s.sent for s in create.samples), default=0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            [
                "sent_s",
                "worker",
                "status",
                "error",
                "http_ms",
                "ticket",
                "e2e_ms",
                "built_ms",
                "relay_ms",
                "events",
            ]
        )
        for s in create.samples:
            times = arrivals.get(s.resource or "", [])
            built = events.built_wall.get(s.resource or "")
            received = events.arrival_wall.get(s.resource or "")
            out.writerow(
                [
                    f"{s.sent - t0:.4f}",
                    s.worker,
                    s.status or "",
                    s.error or "",
                    f"{s.latency * 1000:.2f}",
                    s.resource or "",
                    f"{(times[0] - s.sent) * 1000:.2f}" if times else "",
                    f"{(built - s.sent_wall) * 1000:.2f}" if built is not None else "",
                    f"{(received - built) * 1000:.2f}" if built is not None and received is not None else "",
                    len(times),
                ]
            )


def print_report(report: dict[str, Any]) -> None:
    m, s, c, ev, idem = (report[k] for k in ("machine", "setup", "create", "events", "idempotency"))
    a = report["argon2"]
    print()
    print(f"tickets_create benchmark  {report['date']}  backend={report['backend']}")
    print(
        f"machine: {m['cpu_count']} CPUs ({m['cpu_affinity']} usable), {m['cpu_model']}, "
        f"{m['memory_mib']} MiB RAM"
    )
    print(
        f"setup ({s['seconds']:.1f} s, not timed): {s['blocks']} blocks with boundaries, "
        "1 rapid-response unit, 1 category (working-hours SLA, 1 required string attribute), "
        f"{s['residents']} residents"
    )
    print(
        f"argon2id: time_cost={a['time_cost']} memory={a['memory_kib']} KiB parallelism={a['parallelism']} "
        "(cheap, NOT production: only setup logs in)"
    )
    print(textwrap.fill(f"note: {report['note']}", width=100, subsequent_indent="      "))
    print()
    stop = f"{c['count_target']} tickets" if c["capped_by_count"] else f"{c['duration_target_s']:g} s"
    print(
        f"create: {c['concurrency']} clients, {c['elapsed_s']:.1f} s (until {stop}), "
        f"{c['requests']} requests, {c['created']} created, {c['errors']} errors ({c['error_rate']:.2%})"
    )
    if c["errors"] or c["warmup_errors"]:
        print(f"        errors: {c['error_kinds']}  warm-up errors: {c['warmup_errors']}")
    print(f"        tickets/s: {c['tickets_per_s']:.1f}")
    header = f"  {'latency ms':<36}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'n':>7}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for label, key in (
        ("HTTP (sent -> response read)", "http_latency_ms"),
        ("end-to-end (sent -> event received)", "e2e_latency_ms"),
        ("  sent -> event built in tickets", "send_to_event_built_ms"),
        ("  event built -> received", "event_built_to_received_ms"),
    ):
        lat = c[key]
        print(
            f"  {label:<36}"
            + "".join(f"{lat[k]:>8.1f}" for k in ("p50", "p90", "p99", "max"))
            + f"{lat['n']:>7}"
        )
    early = c["events_before_http_response"] / c["created"] if c["created"] else 0.0
    print(
        f"events: {ev['received']} received; missing {ev['missing']}, duplicates {ev['duplicates']}, "
        f"unexpected {ev['unexpected']}; {early:.0%} arrived before their HTTP response; "
        f"waited {ev['waited_after_phase_s']:.2f} s after the phase"
    )
    if c["postgres_sessions_opened"]:
        opened = ", ".join(f"{k} {v}" for k, v in c["postgres_sessions_opened"].items())
        print(f"PostgreSQL connections opened during the phase: {opened}")
    if ev["missing_warmup"] or ev["missing_pairs"] or ev["unparseable"]:
        print(
            f"        missing for warm-up tickets {ev['missing_warmup']}, for pairs {ev['missing_pairs']}; "
            f"unparseable {ev['unparseable']}"
        )
    rl = idem["retry_latency_ms"]
    print(
        f"idempotency: {idem['retries_matched']}/{idem['retries']} retries with the same key returned "
        f"the same ticket (p50 {rl['p50']:.1f} ms, max {rl['max']:.1f} ms); {idem['pairs_matched']}/"
        f"{idem['concurrent_pairs']} pairs sent at once got one ticket"
    )
    if idem["retry_errors"] or idem["pair_errors"]:
        print(f"        retry errors: {idem['retry_errors']}  pair errors: {idem['pair_errors']}")
    print()
    cols = [("idle", "RSS idle"), ("peak", "RSS peak"), ("after", "after"), ("hwm", "VmHWM")]
    header = (
        f"{'process':<9}"
        + "".join(f"{t:>10}" for _, t in cols)
        + f"{'CPU s':>9}{'CPU %':>8}{'CPU ms/ticket':>15}"
    )
    print(header)
    print("-" * len(header))
    for name, e in report["processes"].items():
        per = e["cpu_ms_per_ticket"]
        print(
            f"{name:<9}"
            + "".join(f"{fmt1(e.get(k)):>10}" for k, _ in cols)
            + f"{'-' if e['cpu_s'] is None else format(e['cpu_s'], '.2f'):>9}{fmt1(e['cpu_percent']):>8}"
            + f"{'-' if per is None else format(per, '.2f'):>15}"
        )
    full = m["cpu_count"] * 100
    print("RSS MiB. idle: after setup, before the phase; peak: max of 0.5 s samples during the phase;")
    print("after: once the events are in; VmHWM: the kernel's lifetime peak. CPU over the timed phase:")
    print(f"{full}% = every CPU busy; 'machine' is the whole host, 'other' the host minus the rows above;")
    print("CPU ms/ticket = CPU seconds / tickets created.")
    if report["backend"] == "postgres":
        print("postgres: the server processes of this run's databases (backends, postmaster, checkpointer,")
        print("WAL writer...); its memory is their PSS added up (shared buffers counted once), no VmHWM.")
    print_warnings(report["warnings"])


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark ticket creation through the gateway, up to the event on JetStream.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_backend(parser, "database of every service")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"seconds of the timed phase (default {DEFAULT_DURATION:g}; with --count: {MAX_DURATION:g})",
    )
    parser.add_argument("--count", type=int, default=None, help="stop after this many tickets instead")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--users", type=int, default=32, help="residents the requests are spread over")
    parser.add_argument("--blocks", type=int, default=16, help="blocks of the street (a square grid)")
    parser.add_argument("--retries", type=int, default=50, help="idempotent retries of earlier creates")
    parser.add_argument("--pairs", type=int, default=10, help="identical pairs sent at the same moment")
    parser.add_argument("--seed", type=int, default=7, help="for the points, titles and attributes")
    add_json(parser)
    parser.add_argument("--samples", type=Path, default=None, metavar="CSV", help="one row per timed request")
    parser.add_argument("--otel", action="store_true", help="enable OpenTelemetry (exporter none)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files)")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = MAX_DURATION if args.count is not None else DEFAULT_DURATION
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:g}]")
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        parser.error(f"--count must be in [1, {MAX_COUNT}]")
    for name, top in (("concurrency", MAX_CONCURRENCY), ("users", 1000), ("blocks", 400)):
        if not 1 <= getattr(args, name) <= top:
            parser.error(f"--{name} must be in [1, {top}]")
    if not 0 <= args.retries <= 1000 or not 0 <= args.pairs <= 100:
        parser.error("--retries must be in [0, 1000] and --pairs in [0, 100]")
    return args


async def run(
    args: argparse.Namespace, stack: Stack, admin_password: str, monitor: Monitor, databases: list[str]
) -> tuple[World, CreatePhase, IdempotencyPhase, EventCollector, dict[str, dict[str, float | None]]]:
    rng = random.Random(args.seed)
    admin = await admin_token(stack.gateway_url, admin_password)
    print(f"setup: {args.blocks} blocks, a unit, a category, {args.users} residents ...", flush=True)
    world = await build_world(stack, admin, args)
    await asyncio.sleep(SETTLE_SECONDS)
    rss: dict[str, dict[str, float | None]] = {"idle": dict(monitor.rss_mib())}
    monitor.start()

    events = EventCollector(stack.nats_url)
    events.start()
    try:
        stop = f"{args.count} tickets or {args.duration:g}s" if args.count else f"{args.duration:g}s"
        print(f"phase create: {args.concurrency} clients until {stop} ...", flush=True)
        sessions = await pg_sessions(databases) if databases else {}
        create = await run_create(args, world, stack.gateway_url, monitor, rng)
        rss["peak"] = dict(monitor.peaks.get(PHASE, {}))
        wanted = {s.resource for s in (*create.samples, *create.warmup) if s.resource}
        create.event_wait = await events.wait_for(wanted, EVENT_WAIT)
        if databases:
            await asyncio.sleep(1.5)  # the server counts sessions with up to a second's delay
            after = await pg_sessions(databases)
            # gov_bench_<service>_<suffix>: connections each service opened during the phase
            create.pg_sessions = {
                name.split("_")[2]: after.get(name, 0) - sessions.get(name, 0) for name in databases
            }

        created = [s for s in create.samples if s.resource and s.error is None]
        print(f"phase idempotency: {args.retries} retries, {args.pairs} concurrent pairs ...", flush=True)
        idem = await run_idempotency(args, world, stack.gateway_url, created, rng)
        await events.wait_for(idem.pair_resources, EVENT_WAIT)
        await asyncio.sleep(1.0)  # a retry must not publish a second event: give one a chance to show
        rss["after"] = dict(monitor.rss_mib())
        rss["hwm"] = dict(monitor.hwm_mib())
    finally:
        events.close()
    return world, create, idem, events, rss


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    admin_password = "Bench-" + secrets.token_urlsafe(16)
    databases: list[str] = []
    return run_on_stack(
        "gov-bench-tickets-",
        args.backend,
        lambda stack, _: _measure(args, stack, admin_password, databases),
        keep=args.keep,
        admin_password=admin_password,
        service_env={"identity": identity_env()},
        otel=args.otel,
        databases=databases,
    )


def _measure(args: argparse.Namespace, stack: Stack, admin_password: str, databases: list[str]) -> int:
    # PostgreSQL: only the server processes working for this run's databases are counted.
    monitor = monitor_for(stack, args.backend, pg_databases=databases)
    try:
        with logs_on_failure(stack):
            world, create, idem, events, rss = asyncio.run(
                run(args, stack, admin_password, monitor, databases)
            )
    finally:
        monitor.close()
    dead = dead_processes(stack)
    report = build_report(args, world, create, idem, events, monitor, rss)
    print_report(report)
    write_json(args.json, report)
    if args.samples:
        write_samples(args.samples, create, events)
        print(f"wrote {args.samples}")
    return verdict(report, dead, stack)


def verdict(report: dict[str, Any], dead: list[str], stack: Stack) -> int:
    c, ev, idem = report["create"], report["events"], report["idempotency"]
    failures = []
    if c["requests"] == 0 or c["error_rate"] > ERROR_BUDGET:
        failures.append(f"more than {ERROR_BUDGET:.0%} errors ({c['errors']} of {c['requests']})")
    if c["warmup_errors"]:
        failures.append(f"{c['warmup_errors']} warm-up requests failed")
    if ev["missing"] or ev["missing_warmup"] or ev["missing_pairs"]:
        failures.append(f"{ev['missing'] + ev['missing_warmup'] + ev['missing_pairs']} events missing")
    if ev["duplicates"] or ev["unexpected"]:
        failures.append(f"{ev['duplicates']} duplicate and {ev['unexpected']} unexpected events")
    if idem["retries_matched"] != idem["retries"] or idem["pairs_matched"] != idem["concurrent_pairs"]:
        failures.append("an idempotent retry did not return the first ticket")
    failures += [f"{name} exited during the benchmark" for name in dead]
    if failures:
        print_logs(stack, "log (tail)")
        print(f"FAILED: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
