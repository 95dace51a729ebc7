"""Benchmark a targeted notice to 170,000 residents, and what it does to ticket creation meanwhile.

    .venv/bin/python bench/notifications_notice.py [--backend sqlite|postgres] [--residents 170000]
                                                   [--rate 20] [--baseline 20] [--json OUT] [--keep]

Starts the system `make run` starts (bench/_stack.py: NATS, every service on fresh databases, the
gateway) and, untimed, builds tickets_create.py's street (16 blocks with boundaries, a unit, a
category, 32 residents who log in). Then seeds --residents residents in households of 2 or 3
(alternately) spread over those blocks, with blocks' own bulk import (`python -m services.blocks
import households|residents FILE`, the operators' command); the import format has no account
column, and no public API links 170,000 accounts in bulk, so one UPDATE in blocks' database links
each imported resident to an account id (`users/<resident id>`; the fan-out never asks identity
about them). Only the seeding takes that shortcut: the fan-out reads the audience through blocks'
ListHouseholds with the notifications service's own token, as in production.

Timed, with every process's RSS sampled (bench/_stack.py's Monitor):

  tickets alone  --baseline seconds of ticket creation through the gateway (POST /api/v1/tickets as
                 tickets_create.py sends it) at a steady --rate per second, each request started
                 on schedule (open loop, up to 16 in flight): HTTP latency p50/p90/p99.
  fan-out        POST /api/v1/notifications/notices to the street (every seeded resident), the same
                 ticket load running until the notice is `completed`. Reported: the time to write
                 all inbox items (the notice's server-side create_time -> complete_time, and as the
                 client saw it), items/s, and the tickets' latency during it.

Checks (exit 1 if one fails): the notice completed with every linked resident told once (its
recipients_total, and a count of the inbox rows and of distinct recipients in the notifications
database), fewer than 1% of the ticket requests failed, no process died. Exit 2 if the stack did
not start. The goals (issue 11): all items written in < 60 s; ticket p99 during the fan-out within
2x of its p99 without it. Not a test: it prints a table (and writes --json).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import random
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench._common import add_backend, add_json, write_json
from bench._stack import (
    MACHINE,
    OTHER,
    POSTGRES,
    REQUEST_TIMEOUT,
    SHARED_CPU_NOTE,
    admin_token,
    dead_processes,
    fmt1,
    identity_env,
    logs_on_failure,
    machine_info,
    monitor_for,
    other_cpu_warnings,
    print_logs,
    run_on_stack,
)
from bench.tickets_create import World, build_world, client_for, latency_summary, new_sample, send
from govkit.devstack import Stack
from services.blocks import importfiles

ALONE, FANOUT = "tickets alone", "fan-out"
IN_FLIGHT = 16  # ticket requests at once at most (clients in the pool)
SETTLE_SECONDS = 3.0
POLL_SECONDS = 0.25
ERROR_BUDGET = 0.01
CODE_PREFIX = "NB"  # the seeded households' codes
WATCHED = ("notifications", "blocks", "tickets", "gateway", POSTGRES, MACHINE, OTHER)


# ----------------------------------------------------------------------------- seeding


def write_files(folder: Path, world: World, residents: int) -> tuple[Path, Path, int]:
    """Households of 2 and 3 residents (alternately) over the world's blocks, `residents` in all."""
    households: list[list[str]] = []
    people: list[list[str]] = []
    left, i = residents, 0
    while left > 0:
        size = min(left, 2 + i % 2)
        code = f"{CODE_PREFIX}{i:07d}"
        block = world.blocks[i % len(world.blocks)].path
        households.append([code, block, "", f"万楼街道{i // 18 + 1}栋{i % 18 + 1:02d}室", ""])
        people += [[code, f"居民{k + 1}", "head" if k == 0 else "other", "", "", ""] for k in range(size)]
        left -= size
        i += 1
    paths = folder / "households.csv", folder / "residents.csv"
    for path, columns, rows in (
        (paths[0], importfiles.HOUSEHOLD_COLUMNS, households),
        (paths[1], importfiles.RESIDENT_COLUMNS, people),
    ):
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
    return paths[0], paths[1], len(households)


def blocks_import(stack: Stack, kind: str, path: Path) -> None:
    """The operators' import command against the running blocks service's database."""
    stack.run_command("blocks", "import", stack.service_envs["blocks"], kind, str(path))


async def link_accounts(url: str) -> int:
    """Each seeded resident linked to an account id of its own (see the module's docstring)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE residents SET user_id = id WHERE household_id IN "
                    "(SELECT id FROM households WHERE code LIKE :prefix)"
                ),
                {"prefix": f"{CODE_PREFIX}%"},
            )
            linked = await conn.scalar(text("SELECT count(*) FROM residents WHERE user_id IS NOT NULL"))
    finally:
        await engine.dispose()
    return int(linked or 0)


async def inbox_rows(url: str, notice_id: str) -> tuple[int, int]:
    """Inbox rows of the notice and distinct recipients among them, in notifications' database."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT count(*), count(DISTINCT recipient) FROM inbox_items WHERE event_id = :e"),
                    {"e": notice_id},
                )
            ).one()
    finally:
        await engine.dispose()
    return int(row[0]), int(row[1])


# ----------------------------------------------------------------------------- load


@dataclass
class Load:
    """Ticket creations started on a fixed schedule until stopped (open loop: a slow answer does not
    delay the next request, up to IN_FLIGHT at once; beyond that they wait for a client, and that
    wait is reported apart from the HTTP latency)."""

    rate: float
    samples: list[Any] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # how long a request waited for a free client
    unsent: int = 0  # scheduled, but no client was free before the phase ended
    elapsed: float = 0.0

    async def run(self, world: World, base_url: str, stop: asyncio.Event, rng: random.Random) -> None:
        pool: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        clients = [client_for(base_url) for _ in range(IN_FLIGHT)]
        for c in clients:
            pool.put_nowait(c)
        tasks: list[asyncio.Task[None]] = []

        async def one(n: int, due: float) -> None:
            client = await pool.get()
            try:
                if stop.is_set():
                    # Still waiting for a client when the phase ended: the backlog of an overloaded
                    # system, counted but not sent (it would run after the phase).
                    self.unsent += 1
                    return
                self.late.append(time.monotonic() - due)
                resident = world.residents[n % len(world.residents)]
                self.samples.append(await send(client, new_sample(world, n % IN_FLIGHT, resident, rng)))
            finally:
                pool.put_nowait(client)

        t0 = time.monotonic()
        try:
            n = 0
            while not stop.is_set():
                due = t0 + n / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                tasks.append(asyncio.create_task(one(n, due)))
                n += 1
            self.elapsed = time.monotonic() - t0
            await asyncio.gather(*tasks)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.samples if s.error is None]
        errors: dict[str, int] = {}
        for s in self.samples:
            if s.error is not None:
                errors[s.error] = errors.get(s.error, 0) + 1
        return {
            "rate_target": self.rate,
            "seconds": round(self.elapsed, 2),
            "requests": len(self.samples),
            "unsent_backlog": self.unsent,
            "created": len(ok),
            "errors": errors,
            "error_rate": (len(self.samples) - len(ok)) / len(self.samples) if self.samples else 1.0,
            "tickets_per_s": round(len(ok) / self.elapsed, 1) if self.elapsed else 0.0,
            "http_latency_ms": latency_summary([s.latency for s in ok]),
            "waited_for_client_ms": latency_summary(self.late),
        }


# ----------------------------------------------------------------------------- the run


def parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def run(
    args: argparse.Namespace, stack: Stack, password: str, backend: str, dbs: list[str]
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    admin = await admin_token(stack.gateway_url, password)
    t0 = time.monotonic()
    world = await build_world(stack, admin, argparse.Namespace(blocks=16, users=32))
    folder = Path(args.tmp)
    households_file, residents_file, households = write_files(folder, world, args.residents)
    seed_t0 = time.monotonic()
    blocks_import(stack, "households", households_file)
    blocks_import(stack, "residents", residents_file)
    linked = await link_accounts(stack.service_envs["blocks"]["GOV_DATABASE_URL"])
    seeded = time.monotonic() - seed_t0
    print(
        f"setup: {households:,} households, {linked:,} residents linked ({seeded:.1f} s to seed)", flush=True
    )
    setup = {"seconds": round(time.monotonic() - t0, 1), "seed_seconds": round(seeded, 1)}
    setup |= {"households": households, "residents_linked": linked}

    monitor = monitor_for(stack, backend, pg_databases=dbs)
    await asyncio.sleep(SETTLE_SECONDS)
    rss: dict[str, dict[str, float | None]] = {"idle": dict(monitor.rss_mib())}
    monitor.start()
    try:
        print(f"phase '{ALONE}': {args.rate:g} tickets/s for {args.baseline:g} s ...", flush=True)
        alone = Load(args.rate)
        stop = asyncio.Event()
        monitor.begin(ALONE)
        timer = asyncio.get_running_loop().call_later(args.baseline, stop.set)
        await alone.run(world, stack.gateway_url, stop, rng)
        timer.cancel()
        monitor.end()
        await asyncio.sleep(SETTLE_SECONDS)

        print(
            f"phase '{FANOUT}': a notice to {world.street}, {args.rate:g} tickets/s meanwhile ...", flush=True
        )
        during = Load(args.rate)
        stop = asyncio.Event()
        progress: list[tuple[float, int]] = []
        async with httpx.AsyncClient(
            base_url=stack.gateway_url,
            timeout=REQUEST_TIMEOUT,
            headers={"Authorization": f"Bearer {admin}"},
            trust_env=False,
        ) as client:
            monitor.begin(FANOUT)
            load = asyncio.create_task(during.run(world, stack.gateway_url, stop, rng))
            await asyncio.sleep(1.0)  # the load is steady before the notice starts
            sent = time.monotonic()
            response = await client.post(
                "/api/v1/notifications/notices",
                json={
                    "node": world.street,
                    "title": "防汛紧急通知",
                    "body": "今晚有强降雨，请低洼地带居民做好转移准备，不要到河边。",
                    "category": "safety",
                    "urgent": True,
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            notice = response.json()
            deadline = sent + args.max_fanout
            while notice["state"] == "sending" and time.monotonic() < deadline:
                await asyncio.sleep(POLL_SECONDS)
                got = await client.get(f"/api/v1/notifications/notices/{notice['id']}")
                got.raise_for_status()
                notice = got.json()
                progress.append((round(time.monotonic() - sent, 2), int(notice["recipients_written"])))
            seen = time.monotonic() - sent
            stop.set()
            await load
            monitor.end()
        rss["peak_alone"] = dict(monitor.peaks.get(ALONE, {}))
        rss["peak_fanout"] = dict(monitor.peaks.get(FANOUT, {}))
        rss["after"] = dict(monitor.rss_mib())
        rss["hwm"] = dict(monitor.hwm_mib())
    finally:
        monitor.close()

    rows, distinct = await inbox_rows(stack.service_envs["notifications"]["GOV_DATABASE_URL"], notice["id"])
    created, completed = parse_time(notice.get("create_time")), parse_time(notice.get("complete_time"))
    server = (completed - created).total_seconds() if created and completed else None
    written = int(notice["recipients_written"])
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "machine": machine_info(),
        "load_average": os.getloadavg(),
        "note": SHARED_CPU_NOTE.format(cpus=os.cpu_count()),
        "setup": setup,
        "notice": {
            "state": notice["state"],
            "recipients_written": written,
            "recipients_total": int(notice["recipients_total"]),
            "households_done": int(notice["households_done"]),
            "inbox_rows": rows,
            "distinct_recipients": distinct,
            "write_seconds_server": round(server, 2) if server is not None else None,
            "write_seconds_client": round(seen, 2),
            "items_per_s": round(written / server) if server else None,
            "progress": progress[:: max(1, len(progress) // 40)],
        },
        "tickets_alone": alone.summary(),
        "tickets_during": during.summary(),
        "processes": {
            name: {
                "rss_idle_mib": rss["idle"].get(name),
                "rss_peak_alone_mib": rss["peak_alone"].get(name),
                "rss_peak_fanout_mib": rss["peak_fanout"].get(name),
                "rss_after_mib": rss["after"].get(name),
                "vm_hwm_mib": rss["hwm"].get(name),
                "cpu_percent_alone": monitor.cpu.get(ALONE, {}).get(name),
                "cpu_percent_fanout": monitor.cpu.get(FANOUT, {}).get(name),
                "cpu_seconds_fanout": monitor.cpu_seconds.get(FANOUT, {}).get(name),
            }
            for name in WATCHED
            if name in rss["idle"] or name in monitor.cpu.get(FANOUT, {})
        },
        "warnings": other_cpu_warnings(monitor, [ALONE, FANOUT]),
    }


def print_report(r: dict[str, Any]) -> None:
    m, n, a, d = r["machine"], r["notice"], r["tickets_alone"], r["tickets_during"]
    print()
    print(f"notifications_notice benchmark  {r['date']}  backend={r['backend']}")
    print(
        f"machine: {m['cpu_count']} CPUs, {m['cpu_model']}, {m['memory_mib']} MiB RAM; load average "
        + " / ".join(f"{x:.2f}" for x in r["load_average"])
    )
    s = r["setup"]
    print(
        f"setup ({s['seconds']} s, not timed): {s['households']:,} households, "
        f"{s['residents_linked']:,} residents linked to accounts (seeded in {s['seed_seconds']} s)"
    )
    print(f"note: {r['note']}")
    print()
    print(
        f"notice: {n['state']}, {n['recipients_written']:,} inbox items written "
        f"({n['inbox_rows']:,} rows, {n['distinct_recipients']:,} distinct recipients), "
        f"{n['households_done']:,} households"
    )
    print(
        f"        all written in {fmt1(n['write_seconds_server'])} s (server create -> complete; the client "
        f"saw {n['write_seconds_client']:.1f} s), {n['items_per_s'] or 0:,} items/s"
    )
    print()
    header = f"  {'ticket creation, HTTP ms':<28}{'rate/s':>8}{'n':>7}{'err':>5}" + "".join(
        f"{k:>8}" for k in ("p50", "p90", "p99", "max")
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for label, t in (("without the fan-out", a), ("during the fan-out", d)):
        lat = t["http_latency_ms"]
        print(
            f"  {label:<28}{t['tickets_per_s']:>8.1f}{lat['n']:>7}{t['requests'] - t['created']:>5}"
            + "".join(f"{lat[k]:>8.1f}" for k in ("p50", "p90", "p99", "max"))
        )
    for label, t in (("without", a), ("during", d)):
        w = t["waited_for_client_ms"]
        print(
            f"  {label}: waited for a free client p50 {w['p50']:.1f} / p99 {w['p99']:.1f} ms; "
            f"{t['unsent_backlog']} scheduled but never sent (backlog at the end)"
        )
    if a["http_latency_ms"]["p99"]:
        ratio = d["http_latency_ms"]["p99"] / a["http_latency_ms"]["p99"]
        print(f"  p99 during / without: {ratio:.2f}x (goal <= 2x)")
    print()
    cols = (
        "rss_idle_mib",
        "rss_peak_alone_mib",
        "rss_peak_fanout_mib",
        "vm_hwm_mib",
        "cpu_percent_alone",
        "cpu_percent_fanout",
    )
    print(
        f"{'process':<14}{'RSS idle':>10}{'peak alone':>12}{'peak fan-out':>14}{'VmHWM':>8}"
        f"{'CPU% alone':>12}{'CPU% fan-out':>14}"
    )
    for name, e in r["processes"].items():
        print(
            f"{name:<14}"
            + "".join(f"{fmt1(e[c]):>{w}}" for c, w in zip(cols, (10, 12, 14, 8, 12, 14), strict=True))
        )
    print("RSS MiB (postgres: PSS of this run's server processes); CPU % of one core over the phase.")
    for w in r["warnings"]:
        print(f"WARNING: {w}")


def verdict(r: dict[str, Any], dead: list[str], linked: int) -> list[str]:
    n = r["notice"]
    failures = []
    if n["state"] != "completed":
        failures.append(f"the notice is {n['state']}, not completed")
    if not (
        n["recipients_written"]
        == n["recipients_total"]
        == n["inbox_rows"]
        == n["distinct_recipients"]
        == linked
    ):
        failures.append(
            f"told {n['recipients_written']} ({n['inbox_rows']} rows, "
            f"{n['distinct_recipients']} people) of {linked}"
        )
    for key in ("tickets_alone", "tickets_during"):
        if r[key]["error_rate"] > ERROR_BUDGET:
            failures.append(
                f"{key}: {r[key]['error_rate']:.1%} of the ticket requests failed {r[key]['errors']}"
            )
    failures += [f"{name} exited during the benchmark" for name in dead]
    return failures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend(parser)
    parser.add_argument("--residents", type=int, default=170_000, help="residents told (default 170000)")
    parser.add_argument("--rate", type=float, default=20.0, help="ticket creations per second (default 20)")
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of tickets alone (default 20)")
    parser.add_argument("--max-fanout", type=float, default=600.0, help="give up on the notice after this")
    parser.add_argument("--seed", type=int, default=7)
    add_json(parser)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files)")
    args = parser.parse_args(argv)
    if not 1 <= args.residents <= 1_000_000 or not 0 < args.rate <= 200 or not 0 < args.baseline <= 600:
        parser.error("--residents in [1, 1000000], --rate in (0, 200], --baseline in (0, 600]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = "Bench-" + secrets.token_urlsafe(16)
    databases: list[str] = []

    def measure(stack: Stack, tmp: Path) -> int:
        args.tmp = str(tmp)
        with logs_on_failure(stack):
            report = asyncio.run(run(args, stack, password, args.backend, databases))
        print_report(report)
        write_json(args.json, report)
        failures = verdict(report, dead_processes(stack), report["setup"]["residents_linked"])
        if failures:
            print_logs(stack, "log (tail)")
            print(f"FAILED: {'; '.join(failures)}", file=sys.stderr)
            return 1
        return 0

    return run_on_stack(
        "gov-bench-notice-",
        args.backend,
        measure,
        keep=args.keep,
        admin_password=password,
        service_env={"identity": identity_env()},
        databases=databases,
    )


if __name__ == "__main__":
    sys.exit(main())
