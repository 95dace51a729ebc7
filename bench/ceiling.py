"""The platform's hot paths as ratios of what the stack itself allows, measured side by side in one run.

    .venv/bin/python bench/ceiling.py [--backend sqlite|postgres] [--duration 10] [--connections 16]

The ceiling is bench/_ceiling_echo.py: a bare FastAPI endpoint (uvicorn with uvloop + httptools)
making one grpc.aio call to a server answering from memory. The platform is the stack `make run`
starts (bench/_stack.py), on fresh databases. Every HTTP path, the ceiling included, is driven by the
same load generator (wrk, one thread, `--connections` keep-alive connections; it costs little CPU and
shares the machine's cores with everything else); the gRPC path (LocateBlock) is driven by a lean
grpc.aio client in this process and compared with the same client against the echo server.

It ends with one line per path:

    path  req/s  p50  p99  ratio-to-ceiling  cpu-ms-per-request-per-process

wrk comes from Debian's package `wrk` (it is not a Python package); the script says so if it is missing.
See bench/README.md for what each path does and the recorded results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._common import add_backend, add_json, temp_folder, write_json
from bench._stack import (
    LOADGEN,
    Monitor,
    StackFailed,
    admin_token,
    dead_processes,
    identity_env,
    logs_on_failure,
    machine_info,
    monitor_for,
    percentile,
    running_stack,
)
from bench.tickets_create import ATTRIBUTE, World, build_world
from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from govkit.devstack import Stack, free_port, wait_for_port
from tests.support.blocks import point
from tests.support.identity import md

HERE = Path(__file__).resolve().parent
ECHO = HERE / "_ceiling_echo.py"
WRK = "wrk"
# Installed with the dev requirements, next to this interpreter (the venv's bin/ need not be on PATH).
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
CEILING = "ceiling (FastAPI -> grpc.aio echo)"
GRPC_CEILING = "ceiling gRPC (grpc.aio echo)"
STATUS_OK = "http 2xx/3xx"
# What the HTTP echo cost in all (both echo processes and wrk) on the machine issue 13's goals were set
# on: 4,200-4,300 req/s on 2 saturated cores. Its one absolute goal, the tickets service's 3 ms of CPU
# per report, scales with this machine's echo against it (bench/README.md, sixth pass).
GOAL_MACHINE_ECHO_MS = 2_000 / 4_250
REPORT_GOAL_MS = 3.0

# Reports every phase's numbers from wrk itself, as one JSON line (latencies in microseconds).
LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class Result:
    path: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per request, per process
    ratio: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# ----------------------------------------------------------------------------- wrk


def lua_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid Lua string literal here


def lua_list(values: list[str]) -> str:
    return "{" + ", ".join(lua_string(v) for v in values) + "}"


def script_get(token: str | None) -> str:
    headers = f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}\n' if token else ""
    return headers + LUA_DONE


def script_rotating(requests: list[tuple[str, str, dict[str, str], str]], stop_after: int | None) -> str:
    """Each request is the next of `requests` (method, path, headers, body), in order, wrapping.

    With `stop_after`, the thread stops after that many responses (a list of one-shot transitions).
    """
    # Formatted in init(), once wrk knows the Host header (wrk.format adds it; h11 refuses a request
    # without one, httptools does not).
    lines = ["local reqs = {}", "init = function(args)", "  reqs = {"]
    for method, path, headers, body in requests:
        hdrs = "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"
        lines.append(f"    wrk.format({lua_string(method)}, {lua_string(path)}, {hdrs}, {lua_string(body)}),")
    lines += [
        "  }",
        "end",
        "local i = 0",
        "request = function()",
        "  i = i % #reqs + 1",
        "  return reqs[i]",
        "end",
    ]
    if stop_after is not None:
        lines += [
            "local seen = 0",
            "response = function(status, headers, body)",
            "  seen = seen + 1",
            f"  if seen >= {stop_after} then wrk.thread:stop() end",
            "end",
        ]
    return "\n".join(lines) + "\n" + LUA_DONE


def run_wrk(url: str, script: str, args: argparse.Namespace, tmp: Path, name: str) -> dict[str, Any]:
    """wrk -t1 -c<connections> -d<duration> against `url`; returns its RESULT line plus its own CPU."""
    path = tmp / f"{name}.lua"
    path.write_text(script, encoding="utf-8")
    argv = [
        WRK,
        "-t1",
        f"-c{args.connections}",
        f"-d{args.duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(path),
        url,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    text = proc.stdout.read().decode("utf-8", "replace")
    # wait4 rather than wait: the load generator's own CPU is part of the picture.
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            result["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
            return result
    raise RuntimeError(f"wrk gave no result for {name}:\n{text}")


# ----------------------------------------------------------------------------- profiles


def slug(phase: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in phase).strip("-")


def package_of(frame: str) -> str:
    """`fn (/x/site-packages/sqlalchemy/orm/query.py:12)` -> `sqlalchemy`; our code -> `govkit` etc."""
    _, _, where = frame.rpartition(" (")
    parts = where.split("/")
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for ours in ("govkit", "services", "gateway", "gen"):
        if ours in parts:
            return ours if ours != "services" else "/".join(parts[parts.index(ours) : parts.index(ours) + 2])
    return "python" if "/lib/python3" in where else where or "?"


def top_frames(path: Path, count: int) -> list[tuple[float, str]]:
    """Where the samples were: per package on top of the stack ("self"), then the top functions.

    py-spy's raw format is one collapsed stack per line: `frame;frame;...;frame count`.
    """
    own: dict[str, int] = {}
    packages: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        leaf = stack.rsplit(";", 1)[-1]
        own[leaf] = own.get(leaf, 0) + samples
        package = package_of(leaf)
        packages[package] = packages.get(package, 0) + samples
    by_package = sorted(packages.items(), key=lambda kv: kv[1], reverse=True)[:8]
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:count]
    return [(n / max(total, 1), f"[package] {name}") for name, n in by_package] + [
        (n / max(total, 1), frame) for frame, n in ranked
    ]


# ----------------------------------------------------------------------------- gRPC load


async def grpc_load(
    target: str, call_factory: Any, args: argparse.Namespace
) -> tuple[list[float], float, int]:
    """`connections` tasks calling back to back over one channel for `duration` seconds."""
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        call = call_factory(channel)
        await call()  # connect and warm up
        deadline = time.perf_counter() + args.duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    await call()
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        return latencies, time.perf_counter() - t0, errors


# ----------------------------------------------------------------------------- the run


@dataclass
class Echo:
    grpc_addr: str
    http_url: str
    procs: dict[str, subprocess.Popen[bytes]]

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_echo(tmp: Path) -> Echo:
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    log = (tmp / "echo.log").open("ab")
    procs["echo-grpc"] = subprocess.Popen(
        [sys.executable, str(ECHO), "grpc", str(grpc_port)], stdout=log, stderr=log, env=env
    )
    wait_for_port(grpc_port, 15, None)
    grpc_addr = f"127.0.0.1:{grpc_port}"
    procs["echo-http"] = subprocess.Popen(
        [sys.executable, str(ECHO), "http", str(http_port), grpc_addr], stdout=log, stderr=log, env=env
    )
    wait_for_port(http_port, 15, None)
    url = f"http://127.0.0.1:{http_port}"
    httpx.get(f"{url}/echo", timeout=10).raise_for_status()
    return Echo(grpc_addr, url, procs)


CREATE = "POST /api/v1/tickets"
ACCEPT = "POST /api/v1/tickets/{id}/transitions (accept)"


def cpu_per_request(monitor: Monitor, phase: str, requests: int, keep: set[str]) -> dict[str, float]:
    """CPU per request of the processes in `keep`, and of PostgreSQL's backends for the stack's
    databases (with `--backend postgres`): they share the machine's cores with the rest."""
    used = monitor.cpu_seconds.get(phase, {})
    return {
        name: round(seconds * 1000 / max(requests, 1), 3)
        for name, seconds in used.items()
        if name in keep or name == "postgres"
    }


async def setup_world(stack: Stack, admin: str) -> World:
    return await build_world(stack, admin, argparse.Namespace(blocks=4, users=16))


def ticket_body(world: World, index: int) -> dict[str, Any]:
    block = world.blocks[index % len(world.blocks)]
    lat, lng = point(block.col + 0.3 + (index % 7) * 0.05, block.row + 0.4)
    return {
        "category": world.category,
        "title": f"{index % 30 + 1}栋电梯停在{index % 17 + 2}楼不动",
        "description": "电梯门打不开,里面好像有人",
        "location": {"latitude": lat, "longitude": lng, "address": f"{index % 30 + 1}栋"},
        "attributes": [{"code": ATTRIBUTE, "values": [f"{index % 30 + 1}栋"]}],
    }


async def ticket_ids(base_url: str, token: str, state: str) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as client:
        page = ""
        while True:
            reply = await client.get(
                "/api/v1/tickets",
                params={"state": state, "page_size": 200, "page_token": page},
                headers={"Authorization": f"Bearer {token}"},
            )
            reply.raise_for_status()
            body = reply.json()
            ids += [t["id"] for t in body["items"]]
            page = body.get("next_page_token") or ""
            if not page:
                return ids


async def open311_key(base_url: str, stack: Stack, admin: str) -> str:
    from gov.identity.v1 import identity_pb2 as ipb
    from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub

    async with grpc.aio.insecure_channel(stack.addrs["identity"]) as channel:
        created = await IdentityServiceStub(channel).CreateServiceAccount(
            ipb.CreateServiceAccountRequest(
                service_account=ipb.ServiceAccount(display_name="bench Open311 app")
            ),
            metadata=md(admin),
        )
    return f"{created.service_account.client_id}:{created.client_secret}"


def form(data: dict[str, str]) -> str:
    return str(httpx.QueryParams(data))


class Runner:
    def __init__(self, args: argparse.Namespace, stack: Stack, echo: Echo, tmp: Path, databases: list[str]):
        self.args, self.stack, self.echo, self.tmp = args, stack, echo, tmp
        pids = {name: proc.pid for name, proc in echo.procs.items()}
        base = monitor_for(stack, args.backend, pg_databases=databases)
        self.monitor = Monitor(
            {**{n: p.pid for n, p in base.procs.items()}, **pids},
            watch_postgres=args.backend == "postgres",
            pg_databases=databases,
        )
        self.results: list[Result] = []
        self.profiles: dict[tuple[str, str], list[tuple[float, str]]] = {}

    def wanted(self, name: str) -> bool:
        """Ceilings always run; the platform's paths only those `--only` names (all without it).
        Creating runs for the transitions too: they accept the tickets it reported."""
        only = self.args.only
        if name == CREATE and self.wanted(ACCEPT):
            return True
        return name.startswith("ceiling") or not only or any(part in name for part in only)

    def http(self, name: str, url: str, script: str, procs: set[str]) -> Result | None:
        if not self.wanted(name):
            return None
        print(f"phase {name} ...", flush=True)
        profilers = self.start_profilers(name, procs)
        self.monitor.begin(name)
        out = run_wrk(url, script, self.args, self.tmp, f"phase{len(self.results)}")
        self.monitor.end()
        self.finish_profilers(name, profilers)
        seconds = out["duration_us"] / 1e6
        result = Result(
            name,
            out["requests"],
            seconds,
            out["p50_us"] / 1000,
            out["p99_us"] / 1000,
            out["status_errors"] + out["socket_errors"],
            cpu_per_request(self.monitor, name, out["requests"], procs)
            | {"wrk": round(out["wrk_cpu_s"] * 1000 / max(out["requests"], 1), 3)},
        )
        self.results.append(result)
        return result

    def start_profilers(self, phase: str, procs: set[str]) -> dict[str, subprocess.Popen[bytes]]:
        """py-spy on the platform's Python processes of this path, for the phase's duration."""
        if self.args.profile is None:
            return {}
        pids = {p.name: p.popen.pid for p in self.stack.procs if p.name in procs and p.name != "nats"}
        out: dict[str, subprocess.Popen[bytes]] = {}
        for name, pid in pids.items():
            target = self.args.profile / f"{slug(phase)}.{name}.txt"
            sampling = ["--native"] if self.args.native else ["--nonblocking"]
            argv = [PY_SPY, "record", *sampling, "-r", "200", "-d", f"{self.args.duration:g}"]
            argv += ["--full-filenames", "-f", "raw", "-o", str(target), "-p", str(pid)]
            out[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return out

    def finish_profilers(self, phase: str, profilers: dict[str, subprocess.Popen[bytes]]) -> None:
        for name, proc in profilers.items():
            proc.wait(60)
            path = self.args.profile / f"{slug(phase)}.{name}.txt"
            if path.exists():
                self.profiles[(phase, name)] = top_frames(path, 12)

    async def grpc(self, name: str, target: str, call_factory: Any, procs: set[str]) -> Result | None:
        if not self.wanted(name):
            return None
        print(f"phase {name} ...", flush=True)
        profilers = self.start_profilers(name, procs)
        self.monitor.begin(name)
        latencies, seconds, errors = await grpc_load(target, call_factory, self.args)
        self.monitor.end()
        self.finish_profilers(name, profilers)
        latencies.sort()
        result = Result(
            name,
            len(latencies),
            seconds,
            percentile(latencies, 50) * 1000,
            percentile(latencies, 99) * 1000,
            errors,
            cpu_per_request(self.monitor, name, len(latencies), procs | {LOADGEN}),
        )
        self.results.append(result)
        return result


async def measure(
    args: argparse.Namespace, stack: Stack, echo: Echo, tmp: Path, databases: list[str], password: str
) -> tuple[list[Result], dict[str, float]]:
    runner = Runner(args, stack, echo, tmp, databases)
    gw = stack.gateway_url
    admin = await admin_token(gw, password)
    print("setup: blocks, a unit, a category, residents, tickets ...", flush=True)
    world = await setup_world(stack, admin)
    resident = world.residents[0]
    async with httpx.AsyncClient(base_url=gw, timeout=30, trust_env=False) as client:
        seeded = []
        for i in range(40):
            reply = await client.post(
                "/api/v1/tickets",
                json=ticket_body(world, i),
                headers={"Authorization": f"Bearer {world.residents[i % len(world.residents)].token}"},
            )
            reply.raise_for_status()
            seeded.append(reply.json()["id"])
    api_key = await open311_key(gw, stack, admin)
    await asyncio.sleep(2)
    # What `make run` would hold: the stack's processes, not this load generator.
    stack_procs = {p.name for p in stack.procs}
    idle = {name: round(v, 1) for name, v in runner.monitor.rss_mib().items() if name in stack_procs}
    print_pss(runner.monitor, stack_procs)
    runner.monitor.start()

    echo_procs = {"echo-http", "echo-grpc"}
    gateway = {"gateway"}
    # A report or a transition is an event the consumers act on meanwhile (a resident's inbox, the
    # staff's, points): their CPU is part of what a write costs the machine.
    writes = gateway | {"tickets", "identity", "blocks", "nats", "notifications", "points"}
    wrk_get = script_get

    ceiling1 = runner.http(CEILING, f"{echo.http_url}/echo", wrk_get(None), echo_procs)
    runner.http("GET /api/v1/me", f"{gw}/api/v1/me", wrk_get(resident.token), gateway | {"identity"})
    runner.http(
        "GET /api/v1/tickets/{id}",
        f"{gw}/api/v1/tickets/{seeded[0]}",
        wrk_get(admin),
        gateway | {"tickets", "identity", "blocks"},
    )
    runner.http(
        "GET /api/v1/tickets?page_size=20",
        f"{gw}/api/v1/tickets?page_size=20",
        wrk_get(admin),
        gateway | {"tickets", "identity", "blocks"},
    )
    creates = [
        (
            "POST",
            "/api/v1/tickets",
            {
                "Authorization": f"Bearer {world.residents[i % len(world.residents)].token}",
                "Content-Type": "application/json",
            },
            json.dumps(ticket_body(world, i), ensure_ascii=False),
        )
        for i in range(200)
    ]
    runner.http(
        CREATE,
        gw,
        script_rotating(creates, None),
        writes,
    )
    submitted = await ticket_ids(gw, admin, "submitted")
    accepts = [
        (
            "POST",
            f"/api/v1/tickets/{tid}/transitions",
            {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
            '{"action":"accept"}',
        )
        for tid in submitted
    ]
    runner.http(
        ACCEPT,
        gw,
        script_rotating(accepts, max(1, len(accepts) - args.connections)),
        writes,
    )
    block = world.blocks[0]
    lat, lng = point(block.col + 0.5, block.row + 0.5)
    open311 = [
        (
            "POST",
            "/open311/v2/requests.json",
            {"Content-Type": "application/x-www-form-urlencoded"},
            form(
                {
                    "api_key": api_key,
                    "service_code": world.category,
                    "lat": str(lat),
                    "long": str(lng),
                    "description": f"电梯故障 {i}",
                    f"attribute[{ATTRIBUTE}]": f"{i % 30 + 1}栋",
                }
            ),
        )
        for i in range(50)
    ]
    runner.http(
        "POST /open311/v2/requests.json",
        gw,
        script_rotating(open311, None),
        writes,
    )

    def health(channel: grpc.aio.Channel) -> Any:
        stub = health_pb2_grpc.HealthStub(channel)
        return lambda: stub.Check(health_pb2.HealthCheckRequest())

    def locate(channel: grpc.aio.Channel) -> Any:
        stub = BlocksServiceStub(channel)
        meta = md(admin)
        return lambda: stub.LocateBlock(blocks_pb2.LocateBlockRequest(lat=lat, lng=lng), metadata=meta)

    grpc_ceiling = await runner.grpc(GRPC_CEILING, echo.grpc_addr, health, {"echo-grpc"})
    await runner.grpc("gRPC LocateBlock", stack.addrs["blocks"], locate, {"blocks", "identity"})
    ceiling2 = runner.http(CEILING + " again", f"{echo.http_url}/echo", wrk_get(None), echo_procs)
    runner.monitor.close()

    assert ceiling1 and ceiling2 and grpc_ceiling  # the ceilings always run
    http_ceiling = (ceiling1.rate + ceiling2.rate) / 2
    for result in runner.results:
        if result.path.startswith("ceiling"):
            continue
        base = grpc_ceiling.rate if result.path.startswith("gRPC") else http_ceiling
        result.ratio = result.rate / base if base else None
    print_profiles(runner.profiles)
    return runner.results, idle


def print_profiles(profiles: dict[tuple[str, str], list[tuple[float, str]]]) -> None:
    for (phase, proc), frames in profiles.items():
        print(f"\nprofile {phase} / {proc}: share of samples on top of the stack")
        for share, frame in frames:
            print(f"  {share * 100:5.1f}%  {frame}")


def print_pss(monitor: Monitor, names: set[str]) -> None:
    """Idle PSS beside the RSS: RSS counts the shared libraries' pages (grpc, SQLAlchemy, Python)
    once per process, PSS shares them out, so its sum is what the stack really holds."""
    pss: dict[str, float] = {}
    for name, proc in monitor.procs.items():
        if name in names:
            with contextlib.suppress(psutil.Error, AttributeError):
                pss[name] = round(proc.memory_full_info().pss / (1024 * 1024), 1)
    if pss:
        listed = ", ".join(f"{k}={v}" for k, v in sorted(pss.items()))
        print(f"idle PSS (MiB): {listed}; total {sum(pss.values()):.0f}", flush=True)


def print_results(results: list[Result], idle: dict[str, float], args: argparse.Namespace) -> None:
    print()
    print(
        f"backend {args.backend}, {args.connections} connections, {args.duration:g} s per path, "
        f"{machine_info()['cpu_count']} CPUs"
    )
    print(
        f"idle RSS (MiB): {', '.join(f'{k}={v}' for k, v in sorted(idle.items()))}; "
        f"total {sum(idle.values()):.0f}"
    )
    print(f"{'path':48} {'req/s':>8} {'p50':>8} {'p99':>8} {'ratio':>6}  cpu-ms/request/process")
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        cpu = " ".join(f"{k}={v:.2f}" for k, v in sorted(r.cpu_ms.items()) if v >= 0.005)
        errors = f"  ERRORS={r.errors}" if r.errors else ""
        print(f"{r.path:48} {r.rate:8.1f} {r.p50_ms:6.1f}ms {r.p99_ms:6.1f}ms {ratio:>6}  {cpu}{errors}")
    echoes = [sum(r.cpu_ms.values()) for r in results if r.path.startswith(CEILING)]
    if echoes:
        echo_ms = sum(echoes) / len(echoes)
        scale = echo_ms / GOAL_MACHINE_ECHO_MS
        print(
            f"machine: the HTTP echo cost {echo_ms:.2f} ms of CPU per request in all, {scale:.1f}x what it "
            f"cost where the goals were set; the report goal ({REPORT_GOAL_MS:g} ms) scales to "
            f"{REPORT_GOAL_MS * scale:.1f} ms here"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_backend(parser)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per path")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    add_json(parser)
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra gateway environment, e.g. GOV_HTTP_LOOP=asyncio GOV_HTTP_PARSER=h11 "
        "(uvicorn's pure-Python pair)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run py-spy on the platform's processes of each path and write the stacks here "
        "(sampling costs some throughput: compare ratios from runs without it)",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="with --profile: native frames too (grpc's core, uvloop, asyncpg's protocol); py-spy "
        "then pauses the processes to sample them, which costs much more throughput",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="measure only the paths whose name contains TEXT (repeatable; the ceilings always run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 1 <= args.connections <= 256:
        parser.error("--duration must be in [1, 120] and --connections in [1, 256]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(WRK) is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    password = "Bench-" + secrets.token_urlsafe(16)
    identity = identity_env()
    # The bench drives the API from one address; the abuse limits would measure themselves.
    gateway_env = {"GOV_AUTH_RATE_PER_ADDRESS": "0", "GOV_AUTH_RATE_PER_LOGIN": "0"}
    gateway_env |= dict(item.split("=", 1) for item in args.gateway_env)
    with temp_folder("gov-bench-ceiling-", keep=args.keep) as tmp:
        echo = start_echo(tmp)
        try:
            databases: list[str] = []
            with running_stack(
                tmp,
                args.backend,
                admin_password=password,
                service_env={"identity": identity},
                gateway_env=gateway_env,
                databases=databases,
            ) as stack:
                with logs_on_failure(stack):
                    results, idle = asyncio.run(measure(args, stack, echo, tmp, databases, password))
                dead = dead_processes(stack)
        except StackFailed:
            return 2
        finally:
            echo.stop()
    print_results(results, idle, args)
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "idle_rss_mib": idle,
        "results": [r.__dict__ | {"rate": r.rate} for r in results],
    }
    write_json(args.json, payload)
    if dead:
        print(f"error: processes died: {dead}", file=sys.stderr)
        return 1
    return 1 if any(r.errors > r.requests * 0.01 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
