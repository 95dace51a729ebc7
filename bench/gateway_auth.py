"""Benchmark the gateway's two authentication paths against a real local stack.

    .venv/bin/python bench/gateway_auth.py [--backend sqlite|postgres] [--duration SECONDS]
                                           [--concurrency N] [--json OUT]

Starts NATS, every service `make run` starts (identity, blocks, ...) and the gateway as real
processes in a temporary directory (the same `govkit.devstack.Stack` that `make run` and the
integration tests use), each service on a fresh database; creates a few users, then runs two timed
phases of concurrent keep-alive HTTP clients (only identity and the gateway are under load):

  login  POST /api/v1/auth/token (password grant): argon2id verify + a refresh token written.
  me     GET  /api/v1/me with a bearer token: JWT checked by the gateway, then GetCaller over gRPC.

It reports per phase the request count, errors, throughput and latency percentiles, and per
process (nats, each service, the gateway, and the load generator itself) the resident memory idle
and at peak under load, and the CPU used (plus PostgreSQL's, and the rest of the machine's).
Password hashing uses the production argon2 parameters unless overridden on the command line.
See bench/README.md for how to read the numbers.

The load generator runs on the same machine and shares its CPUs with the system under test.
All traffic goes to 127.0.0.1; every phase is bounded in time and in request count. Exits 1 if
any phase had more than 1% errors, 2 if the stack could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import secrets
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import add_backend, add_json, write_json
from bench._stack import (
    MACHINE,
    OTHER,
    POSTGRES,
    REQUEST_TIMEOUT,
    SHARED_CPU_NOTE,
    Monitor,
    admin_token,
    dead_processes,
    identity_env,
    machine_info,
    monitor_for,
    other_cpu_warnings,
    percentile,
    print_logs,
    print_warnings,
    run_on_stack,
)
from bench._stack import fmt1 as _fmt
from bench._stack import r1 as _r
from govkit.devstack import Stack
from services.identity.settings import IdentitySettings

USER_PASSWORD = "bench-" + secrets.token_urlsafe(12)
SCOPE = "yuhu/wanlou"

MAX_DURATION = 300.0  # seconds per phase
MAX_CONCURRENCY = 256
SETTLE_SECONDS = 2.0
ERROR_BUDGET = 0.01  # a phase fails above 1% errors


def production_argon2() -> dict[str, int]:
    """The defaults identity uses in production, read from its settings so they cannot drift."""
    fields = IdentitySettings.model_fields
    return {
        "time_cost": fields["argon2_time_cost"].default,
        "memory_kib": fields["argon2_memory_kib"].default,
        "parallelism": fields["argon2_parallelism"].default,
    }


# ----------------------------------------------------------------------------- statistics


@dataclass
class PhaseResult:
    name: str
    concurrency: int
    duration_target: float
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful and failed requests
    finished_at: list[float] = field(default_factory=list)  # seconds since the phase began
    failed_at: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    warmup_errors: int = 0
    capped: bool = False  # stopped by --max-requests rather than by time

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0

    @property
    def failed(self) -> bool:
        return self.requests == 0 or self.error_rate > ERROR_BUDGET or self.warmup_errors > 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        ms = 1000.0
        return {
            "concurrency": self.concurrency,
            "duration_target_s": self.duration_target,
            "elapsed_s": round(self.elapsed, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 5),
            "error_kinds": dict(self.error_kinds),
            "warmup_errors": self.warmup_errors,
            "capped_by_max_requests": self.capped,
            "throughput_rps": round(self.requests / self.elapsed, 2) if self.elapsed else 0.0,
            "latency_ms": {
                "mean": round(sum(ordered) / len(ordered) * ms, 2) if ordered else 0.0,
                "p50": round(percentile(ordered, 50) * ms, 2),
                "p90": round(percentile(ordered, 90) * ms, 2),
                "p99": round(percentile(ordered, 99) * ms, 2),
                "max": round(ordered[-1] * ms, 2) if ordered else 0.0,
            },
            "per_second": self.timeline(),
        }

    def timeline(self) -> list[dict[str, float]]:
        """Requests finished, errors and the slowest request in each second of the phase: shows stalls."""
        seconds = int(self.elapsed) + 1
        done = [0] * seconds
        failed = [0] * seconds
        slowest = [0.0] * seconds
        for at, latency in zip(self.finished_at, self.latencies, strict=True):
            i = min(int(at), seconds - 1)
            done[i] += 1
            slowest[i] = max(slowest[i], latency)
        for at in self.failed_at:
            failed[min(int(at), seconds - 1)] += 1
        return [
            {"second": i, "requests": done[i], "errors": failed[i], "max_ms": round(slowest[i] * 1000, 1)}
            for i in range(seconds)
        ]


# ----------------------------------------------------------------------------- load


# (client, worker index, iteration) -> the request to send
RequestFactory = Callable[[httpx.AsyncClient, int, int], httpx.Request]


class Budget:
    """A shared cap on the number of timed requests of one phase."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exhausted = False

    def take(self) -> bool:
        if self.left <= 0:
            self.exhausted = True
            return False
        self.left -= 1
        return True


async def _one(client: httpx.AsyncClient, request: httpx.Request) -> tuple[float, str | None]:
    """Send one request; returns (latency, error kind or None)."""
    start = time.perf_counter()
    kind: str | None = None
    try:
        response = await client.send(request)
        if not 200 <= response.status_code < 300:
            kind = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        kind = type(exc).__name__
    return time.perf_counter() - start, kind


async def run_phase(
    name: str,
    base_url: str,
    make_request: RequestFactory,
    concurrency: int,
    duration: float,
    max_requests: int,
    monitor: Monitor,
) -> PhaseResult:
    result = PhaseResult(name, concurrency, duration)
    budget = Budget(max_requests)
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,  # never through a proxy: straight to 127.0.0.1
        )
        for _ in range(concurrency)
    ]
    try:
        # Warm-up (not timed): one request per client opens its keep-alive connection.
        warm = await asyncio.gather(
            *(_one(c, make_request(c, i, 0)) for i, c in enumerate(clients)),
        )
        result.warmup_errors = sum(1 for _, kind in warm if kind)

        monitor.begin(name)
        t0 = time.monotonic()
        deadline = t0 + duration

        async def worker(index: int, client: httpx.AsyncClient) -> None:
            for iteration in itertools.count(1):
                if time.monotonic() >= deadline or not budget.take():
                    return
                latency, kind = await _one(client, make_request(client, index, iteration))
                result.latencies.append(latency)
                result.finished_at.append(time.monotonic() - t0)
                if kind:
                    result.failed_at.append(result.finished_at[-1])
                    result.errors += 1
                    result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1

        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
        result.elapsed = time.monotonic() - t0
        result.capped = budget.exhausted
        monitor.end()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return result


async def create_users(base_url: str, token: str, count: int) -> list[str]:
    """Create `count` users (a few at a time: each one is an argon2 hash); returns their phones."""
    phones = [f"139{n:08d}" for n in range(10_000_001, 10_000_001 + count)]
    gate = asyncio.Semaphore(4)
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=REQUEST_TIMEOUT,
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    ) as client:

        async def create(index: int, phone: str) -> None:
            async with gate:
                response = await client.post(
                    "/api/v1/users",
                    json={
                        "phone": phone,
                        "display_name": f"压测用户{index:03d}",
                        "scope": SCOPE,
                        "password": USER_PASSWORD,
                    },
                )
            if response.status_code != 201:
                raise RuntimeError(f"creating user {phone}: HTTP {response.status_code} {response.text}")

        await asyncio.gather(*(create(i, p) for i, p in enumerate(phones)))
    return phones


async def user_tokens(base_url: str, phones: list[str]) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        tokens = []
        for phone in phones:
            response = await client.post(
                "/api/v1/auth/token", data={"username": phone, "password": USER_PASSWORD}
            )
            response.raise_for_status()
            tokens.append(response.json()["access_token"])
        return tokens


async def run_load(
    args: argparse.Namespace, stack: Stack, admin_password: str, monitor: Monitor
) -> dict[str, PhaseResult]:
    base = stack.gateway_url
    token = await admin_token(base, admin_password)
    phones = await create_users(base, token, args.users)
    results: dict[str, PhaseResult] = {}

    if "login" in args.phases:

        def login_request(client: httpx.AsyncClient, worker: int, iteration: int) -> httpx.Request:
            # Always the right password, spread over the accounts: nothing can lock out.
            phone = phones[(worker + iteration * args.login_concurrency) % len(phones)]
            return client.build_request(
                "POST", "/api/v1/auth/token", data={"username": phone, "password": USER_PASSWORD}
            )

        print(f"phase login: {args.login_concurrency} clients for {args.duration:g}s ...", flush=True)
        results["login"] = await run_phase(
            "login", base, login_request, args.login_concurrency, args.duration, args.max_requests, monitor
        )

    if "me" in args.phases:
        tokens = await user_tokens(base, phones)

        def me_request(client: httpx.AsyncClient, worker: int, iteration: int) -> httpx.Request:
            bearer = tokens[(worker + iteration) % len(tokens)]
            return client.build_request("GET", "/api/v1/me", headers={"Authorization": f"Bearer {bearer}"})

        print(f"phase me: {args.me_concurrency} clients for {args.duration:g}s ...", flush=True)
        results["me"] = await run_phase(
            "me", base, me_request, args.me_concurrency, args.duration, args.max_requests, monitor
        )
    return results


# ----------------------------------------------------------------------------- report


def build_report(
    args: argparse.Namespace,
    argon2: dict[str, int],
    results: dict[str, PhaseResult],
    monitor: Monitor,
    rss_idle: dict[str, float],
    rss_after: dict[str, float],
    hwm: dict[str, float | None],
) -> dict[str, Any]:
    cpus = os.cpu_count() or 0
    memory = {}
    for name in monitor.procs:  # nats, the services, the gateway, then the load generator
        entry: dict[str, float | None] = {"idle": _r(rss_idle.get(name))}
        for phase in results:
            entry[f"{phase}_peak"] = _r(monitor.peaks.get(phase, {}).get(name))
        entry["after"] = _r(rss_after.get(name))
        entry["hwm"] = _r(hwm.get(name))
        memory[name] = entry
    return {
        "benchmark": "gateway_auth",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "backend": args.backend,
        "machine": machine_info(),
        "argon2": {**argon2, "production_defaults": argon2 == production_argon2()},
        "note": SHARED_CPU_NOTE.format(cpus=cpus),
        "phases": {name: r.summary() for name, r in results.items()},
        "rss_mib": memory,
        "cpu_percent": {
            phase: {name: round(value, 1) for name, value in monitor.cpu.get(phase, {}).items()}
            for phase in results
        },
        "warnings": other_cpu_warnings(monitor, list(results)),
    }


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    a = report["argon2"]
    phases = report["phases"]
    print()
    print(f"gateway_auth benchmark  {report['date']}  backend={report['backend']}")
    print(
        f"machine: {m['cpu_count']} CPUs ({m['cpu_affinity']} usable), {m['cpu_model']}, "
        f"{m['memory_mib']} MiB RAM"
    )
    tag = "production defaults" if a["production_defaults"] else "NOT the production defaults"
    print(
        f"argon2id: time_cost={a['time_cost']} memory={a['memory_kib']} KiB "
        f"parallelism={a['parallelism']} ({tag})"
    )
    print(textwrap.fill(f"note: {report['note']}", width=100, subsequent_indent="      "))
    print()
    header = (
        f"{'phase':<6} {'conc':>4} {'requests':>8} {'errors':>6} {'req/s':>8} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, p in phases.items():
        lat = p["latency_ms"]
        print(
            f"{name:<6} {p['concurrency']:>4} {p['requests']:>8} {p['errors']:>6} "
            f"{p['throughput_rps']:>8.1f} {lat['p50']:>8.1f} {lat['p90']:>8.1f} "
            f"{lat['p99']:>8.1f} {lat['max']:>8.1f}"
        )
        if p["errors"] or p["warmup_errors"]:
            print(f"       errors: {p['error_kinds']}  warm-up errors: {p['warmup_errors']}")
        if p["capped_by_max_requests"]:
            print("       (stopped early by --max-requests)")
    print()
    cols = ["idle", *(f"{ph}_peak" for ph in phases), "after", "hwm"]
    titles = {"idle": "idle", "after": "after", "hwm": "VmHWM"} | {f"{ph}_peak": f"{ph} pk" for ph in phases}
    header = f"{'RSS MiB':<9}" + "".join(f"{titles[c]:>10}" for c in cols)
    cpu = report["cpu_percent"]
    header += "".join(f"{'CPU% ' + ph:>12}" for ph in phases)
    print(header)
    print("-" * len(header))
    extra = [POSTGRES] if report["backend"] == "postgres" else []
    rows = [*report["rss_mib"].items(), *((name, {}) for name in (*extra, OTHER, MACHINE))]
    for name, entry in rows:
        line = f"{name:<9}" + "".join(f"{_fmt(entry.get(c)):>10}" for c in cols)
        line += "".join(f"{_fmt(cpu.get(ph, {}).get(name)):>12}" for ph in phases)
        print(line)
    full = report["machine"]["cpu_count"] * 100
    print("pk: max of RSS samples taken every 0.5 s during the phase; after: 2 s after the last phase;")
    print("VmHWM: the kernel's lifetime peak RSS of the process; CPU%: 100 per fully used core,")
    print(f"{full}% = every CPU busy. 'machine' is the whole host; 'other' is the host minus the rows above.")
    print_warnings(report["warnings"])


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark gateway login and /me against a fresh local stack.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_backend(parser, "database of every service")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="clients in every phase (overrides the two below)"
    )
    parser.add_argument("--login-concurrency", type=int, default=8, help="clients in the login phase")
    parser.add_argument("--me-concurrency", type=int, default=16, help="clients in the me phase")
    parser.add_argument("--users", type=int, default=16, help="accounts the logins are spread over")
    parser.add_argument("--phases", default="login,me", help="comma-separated subset of login,me")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on timed requests per phase")
    add_json(parser)
    prod = production_argon2()
    for key in ("time_cost", "memory_kib", "parallelism"):
        parser.add_argument(
            f"--argon2-{key.replace('_', '-')}",
            type=int,
            default=prod[key],
            help="argon2id parameter; the default is production's, change it only to experiment",
        )
    parser.add_argument("--otel", action="store_true", help="enable OpenTelemetry (exporter none)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")
    args = parser.parse_args(argv)

    if args.concurrency is not None:
        args.login_concurrency = args.me_concurrency = args.concurrency
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not args.phases or any(p not in ("login", "me") for p in args.phases):
        parser.error("--phases takes login, me or login,me")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:g}]")
    for name in ("login_concurrency", "me_concurrency", "users"):
        if not 1 <= getattr(args, name) <= MAX_CONCURRENCY:
            parser.error(f"--{name.replace('_', '-')} must be in [1, {MAX_CONCURRENCY}]")
    if args.max_requests < 1:
        parser.error("--max-requests must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    argon2 = {
        "time_cost": args.argon2_time_cost,
        "memory_kib": args.argon2_memory_kib,
        "parallelism": args.argon2_parallelism,
    }
    admin_password = "Bench-" + secrets.token_urlsafe(16)
    # Every service `make run` starts (the gateway needs them all to be ready), each with a fresh
    # database of its own; only identity is under load.
    return run_on_stack(
        "gov-bench-",
        args.backend,
        lambda stack, _: _measure(args, argon2, stack, admin_password),
        keep=args.keep,
        admin_password=admin_password,
        service_env={"identity": identity_env(argon2)},
        otel=args.otel,
    )


def _measure(args: argparse.Namespace, argon2: dict[str, int], stack: Stack, admin_password: str) -> int:
    monitor = monitor_for(stack, args.backend)
    try:
        time.sleep(SETTLE_SECONDS)
        rss_idle = monitor.rss_mib()
        monitor.start()

        results = asyncio.run(run_load(args, stack, admin_password, monitor))

        time.sleep(SETTLE_SECONDS)
        rss_after = monitor.rss_mib()
        hwm = monitor.hwm_mib()
        dead = dead_processes(stack)

        report = build_report(args, argon2, results, monitor, rss_idle, rss_after, hwm)
        print_report(report)
        write_json(args.json, report)

        failed_phases = [name for name, r in results.items() if r.failed]
        for name in dead:
            print(f"error: {name} exited during the benchmark", file=sys.stderr)
        if failed_phases or dead:
            print_logs(stack, "log (tail)")
        if failed_phases:
            print(
                f"FAILED: more than {ERROR_BUDGET:.0%} errors in {', '.join(failed_phases)}", file=sys.stderr
            )
        return 1 if failed_phases or dead else 0
    finally:
        monitor.close()


if __name__ == "__main__":
    sys.exit(main())
