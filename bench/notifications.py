"""Benchmark event -> inbox -> SSE: how long a ticket event takes to reach its reporter's browser.

    .venv/bin/python bench/notifications.py [--backend sqlite|postgres] [--rate 200] [--duration 20]
                                            [--users 50] [--json OUT] [--profile DIR]

Starts the same system `make run` starts (bench/_stack.py: NATS, every service on fresh databases,
the gateway), creates --users residents (cheap argon2: only setup logs in), and opens one SSE stream
per resident through the gateway (`GET /api/v1/notifications/stream`, an httpx streaming client; each
stream is one WatchInbox call from the gateway to the notifications service).

Then, for --duration seconds, publishes --rate `tickets.v1.ticket.accepted` events per second onto
the TICKETS stream (as the tickets service's outbox relay would), each naming one of the residents
as its reporter, round-robin. The notifications service consumes each (JetStream, exactly once),
writes the reporter's inbox item in a transaction, and after the commit its in-process hub hands the
item to the reporter's WatchInbox stream, which the gateway relays as an SSE `inbox_item` event.

Measured per event: publish -> SSE event received (end to end), split at the item's `create_time`
(publish -> inbox row written, written -> SSE received; one clock, one machine). Also the
notifications service's RSS (idle, peak under load), every process's CPU, and the notifications
service's CPU time per event (while publishing and draining, its streams included), also less what
it uses idle (measured for 5 s before publishing, the streams open). Exit 1 if an event's
item never arrived (within 30 s after the last publish) or arrived twice; 2 if the stack did not start.
With --profile DIR, py-spy samples the notifications service while the events are published (raw
collapsed stacks in DIR/notifications.txt; the top frames are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats

from bench._common import add_backend, add_json, write_json
from bench._stack import (
    SHARED_CPU_NOTE,
    Monitor,
    cpu_line,
    fmt1,
    identity_env,
    machine_info,
    other_cpu_warnings,
    percentile,
    run_monitored,
    run_on_stack,
)
from bench.ceiling import PY_SPY, print_profiles, top_frames
from gov.identity.v1 import identity_pb2
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.tickets.v1 import events_pb2 as ticket_events
from gov.tickets.v1 import tickets_pb2
from govkit.devstack import Stack
from govkit.events import MSG_ID_HEADER, build_event

CHEAP_ARGON2 = {"GOV_ARGON2_TIME_COST": "1", "GOV_ARGON2_MEMORY_KIB": "1024", "GOV_ARGON2_PARALLELISM": "1"}
PASSWORD = "bench-password-1"
DRAIN_SECONDS = 30.0
IDLE_SECONDS = 5.0


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def make_users(stack: Stack, admin_password: str, n: int) -> list[tuple[str, str]]:
    channel = grpc.aio.insecure_channel(stack.addrs["identity"])
    identity = IdentityServiceStub(channel)
    admin = (
        await identity.Login(identity_pb2.LoginRequest(login="admin", password=admin_password))
    ).access_token
    out = []
    base = secrets.randbelow(10_000_000)
    for i in range(n):
        phone = f"138{(base + i) % 100_000_000:08d}"
        user = await identity.CreateUser(
            identity_pb2.CreateUserRequest(
                user=identity_pb2.User(phone=phone, display_name=f"居民{i}", scope="yuhu"), password=PASSWORD
            ),
            metadata=md(admin),
        )
        token = (await identity.Login(identity_pb2.LoginRequest(login=phone, password=PASSWORD))).access_token
        out.append((user.name, token))
    await channel.close()
    return out


class Reader:
    """One resident's SSE stream: the arrival time of each event, by the ticket it is about."""

    def __init__(self, client: httpx.AsyncClient, token: str, arrivals: dict[str, list[float]]) -> None:
        self.client, self.token, self.arrivals = client, token, arrivals
        self.open = asyncio.Event()
        self.written: dict[str, float] = {}
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.client.stream("GET", "/api/v1/notifications/stream", headers=headers) as r:
            r.raise_for_status()
            data = ""
            async for line in r.aiter_lines():
                if line.startswith(":") or line.startswith("retry:"):
                    self.open.set()
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    now = time.time()
                    item = json.loads(data)
                    self.arrivals.setdefault(item["resource"], []).append(now)
                    created = dt.datetime.fromisoformat(item["create_time"].replace("Z", "+00:00"))
                    self.written[item["resource"]] = created.timestamp()
                    data = ""


def event_for(reporter: str) -> tuple[str, Any]:
    ticket = f"tickets/b-{uuid.uuid4().hex[:16]}"
    payload = ticket_events.TicketTransitioned(
        ticket=ticket_events.TicketSummary(
            name=ticket,
            category="categories/bench",
            state=tickets_pb2.TICKET_STATE_ACCEPTED,
            node="yuhu/bench/b01",
            street="yuhu/bench",
            district="yuhu",
            reporter=reporter,
        )
    )
    return ticket, build_event("tickets.v1.ticket.accepted", payload, actor="system", resource=ticket)


def start_profiler(args: argparse.Namespace, stack: Stack) -> subprocess.Popen[bytes] | None:
    """py-spy on the notifications service for the publishing phase (--profile)."""
    if args.profile is None:
        return None
    [pid] = [p.popen.pid for p in stack.procs if p.name == "notifications"]
    argv = [PY_SPY, "record", "--nonblocking", "-r", "200", "-d", f"{args.duration:g}", "--full-filenames"]
    argv += ["-f", "raw", "-o", str(args.profile / "notifications.txt"), "-p", str(pid)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stats_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p90_ms": round(percentile(ordered, 90), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1) if ordered else 0.0,
    }


async def run(
    args: argparse.Namespace, stack: Stack, admin_password: str, monitor: Monitor
) -> dict[str, Any]:
    users = await make_users(stack, admin_password, args.users)
    arrivals: dict[str, list[float]] = {}
    sent: dict[str, float] = {}
    limits = httpx.Limits(max_connections=args.users + 10, max_keepalive_connections=args.users + 10)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=httpx.Timeout(30, read=None), limits=limits, trust_env=False
    ) as client:
        readers = [Reader(client, token, arrivals) for _, token in users]
        await asyncio.wait_for(asyncio.gather(*(r.open.wait() for r in readers)), 60)
        await asyncio.sleep(1)  # every WatchInbox subscribed
        idle = monitor.rss_mib()
        # What the service spends with nothing to do (its streams' heartbeats, its pollers), so the
        # CPU per event can be told apart from it.
        monitor.begin("idle")
        await asyncio.sleep(IDLE_SECONDS)
        monitor.end()
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()
        publishes: list[asyncio.Task[Any]] = []
        total = int(args.rate * args.duration)
        profiler = start_profiler(args, stack)
        monitor.begin("load")
        start = time.monotonic()
        behind = 0.0
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            reporter = users[i % len(users)][0]
            ticket, event = event_for(reporter)
            sent[ticket] = time.time()
            publishes.append(
                asyncio.create_task(js.publish(event.type, event.envelope, headers={MSG_ID_HEADER: event.id}))
            )
        published_in = time.monotonic() - start
        failed = sum(
            1 for r in await asyncio.gather(*publishes, return_exceptions=True) if isinstance(r, Exception)
        )
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and len(arrivals.keys() & sent.keys()) < len(sent):  # noqa: ASYNC110 - many readers fill it
            await asyncio.sleep(0.2)
        monitor.end()
        if profiler is not None:
            profiler.wait(60)
        await nc.close()
        for r in readers:
            r.task.cancel()
        await asyncio.gather(*(r.task for r in readers), return_exceptions=True)
    written: dict[str, float] = {}
    for r in readers:
        written |= r.written
    e2e = [arrivals[t][0] - s for t, s in sent.items() if t in arrivals]
    to_inbox = [written[t] - s for t, s in sent.items() if t in written]
    to_sse = [arrivals[t][0] - written[t] for t in sent if t in arrivals and t in written]
    return {
        "events": total,
        "publish_failed": failed,
        "published_per_second": round(total / published_in, 1),
        "publisher_max_behind_ms": round(behind * 1000, 1),
        "received": len(arrivals.keys() & sent.keys()),
        "missing": len(sent.keys() - arrivals.keys()),
        "duplicates": sum(len(v) - 1 for t, v in arrivals.items() if t in sent),
        "end_to_end": stats_ms(e2e),
        "publish_to_inbox_row": stats_ms(to_inbox),
        "inbox_row_to_sse": stats_ms(to_sse),
        "rss_idle_mib": {k: round(v, 1) for k, v in idle.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend(parser)
    parser.add_argument("--rate", type=float, default=200.0, help="ticket events per second (default 200)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of publishing (default 20)")
    parser.add_argument("--users", type=int, default=50, help="residents, one SSE stream each (default 50)")
    add_json(parser)
    parser.add_argument("--profile", type=Path, help="py-spy the notifications service; raw stacks here")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    admin_password = secrets.token_urlsafe(16)
    databases: list[str] = []

    def measure(stack: Stack, _: Path) -> int:
        result, monitor = run_monitored(
            stack, args.backend, databases, lambda monitor: run(args, stack, admin_password, monitor)
        )
        used = monitor.cpu_seconds.get("load", {}).get("notifications")
        idle_share = monitor.cpu.get("idle", {}).get("notifications", 0.0) / 100
        busy = None if used is None else max(0.0, used - idle_share * monitor.elapsed.get("load", 0.0))
        received = result["received"]
        result["notifications_cpu_ms_per_event"] = 1000 * used / received if used and received else None
        result["notifications_cpu_ms_per_event_above_idle"] = (
            1000 * busy / received if busy is not None and received else None
        )
        return report(args, result, monitor)

    return run_on_stack(
        "bench-notifications-",
        args.backend,
        measure,
        admin_password=admin_password,
        service_env={"identity": identity_env()},
        gateway_env={"GOV_SSE_HEARTBEAT_SECONDS": "5"},
        databases=databases,
    )


def report(args: argparse.Namespace, result: dict[str, Any], monitor: Monitor) -> int:
    machine = machine_info()
    print(
        f"\nevent -> inbox -> SSE, backend {args.backend}, {args.rate:g} events/s for {args.duration:g} s, "
        f"{args.users} streams\n{SHARED_CPU_NOTE.format(cpus=machine['cpu_count'])}"
    )
    print(
        f"events {result['events']} (published at {result['published_per_second']}/s, publisher at most "
        f"{result['publisher_max_behind_ms']} ms behind, {result['publish_failed']} failed); received "
        f"{result['received']}, not arrived {DRAIN_SECONDS:g} s after the last publish {result['missing']}, "
        f"duplicates {result['duplicates']}"
    )
    print(f"{'latency':<24} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in ("end_to_end", "publish_to_inbox_row", "inbox_row_to_sse"):
        s = result[name]
        print(f"{name:<24} {s['n']:>6} {s['p50_ms']:>8} {s['p90_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}")
    peaks = monitor.peaks.get("load", {})
    print(
        f"\nnotifications RSS: idle {fmt1(result['rss_idle_mib'].get('notifications'))} MiB, "
        f"peak under load {fmt1(peaks.get('notifications'))} MiB; gateway idle "
        f"{fmt1(result['rss_idle_mib'].get('gateway'))}, peak {fmt1(peaks.get('gateway'))} MiB"
    )
    print(f"CPU % of one core: {cpu_line(monitor.cpu.get('load', {}))}")
    # Less sensitive to other workloads than the latencies: what each event cost the service.
    print(
        f"notifications CPU per event received: {fmt1(result['notifications_cpu_ms_per_event'])} ms; "
        f"above its idle use ({fmt1(monitor.cpu.get('idle', {}).get('notifications'))}% of a core): "
        f"{fmt1(result['notifications_cpu_ms_per_event_above_idle'])} ms"
    )
    if args.profile is not None and (args.profile / "notifications.txt").exists():
        print_profiles({("load", "notifications"): top_frames(args.profile / "notifications.txt", 15)})
    for warning in other_cpu_warnings(monitor, ["load"]):
        print(f"warning: {warning}", file=sys.stderr)
    payload = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine,
        "results": result,
        "cpu": monitor.cpu,
        "rss_peak_mib": monitor.peaks,
    }
    write_json(args.json, payload)
    return 0 if result["missing"] == 0 and result["duplicates"] == 0 and not result["publish_failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
