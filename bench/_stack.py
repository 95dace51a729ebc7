"""What the end-to-end benchmarks share: a fresh local stack, databases, process statistics.

    from bench._stack import Monitor, running_stack, percentile, ...

`running_stack()` starts what `make run` starts (NATS, every service in `govkit.devstack.SERVICES`,
the gateway) as real processes in a temporary directory, each service on a fresh database (SQLite
files there, or new PostgreSQL databases on 127.0.0.1:5432 that are dropped afterwards), and stops
everything on the way out. `Monitor` samples each process's RSS in a thread and measures their CPU
per phase. Used by the benchmarks that drive a running stack; see bench/README.md. What benchmarks
share without a stack (PostgreSQL databases, the temporary folder, the --json file) is in _common.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import secrets
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from bench._common import cpu_model, create_pg_database, drop_pg_database, pg_connect, temp_folder
from govkit.devstack import SERVICES, Stack

ADMIN_LOGIN = "admin"
REQUEST_TIMEOUT = 30.0  # seconds per request
SAMPLE_INTERVAL = 0.5  # seconds between RSS samples

LOADGEN = "loadgen"  # this process: the HTTP clients
POSTGRES = "postgres"  # the PostgreSQL server's processes (postgres backend only)
OTHER = "other"  # everything else on the host: should be ~0, or a neighbour disturbed the run
MACHINE = "machine"  # all CPUs, every process: shows whether the CPUs were saturated
OTHER_CPU_WARNING = 15.0  # % of one core used by unrelated processes that makes a run suspect

SHARED_CPU_NOTE = (
    "The load generator runs on the same machine and shares its {cpus} CPU(s) with NATS, the services "
    "and the gateway: the numbers are a lower bound on what the services do on their own cores."
)


# ----------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100), at least 1
    return sorted_values[int(rank) - 1]


def r1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def fmt1(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# ----------------------------------------------------------------------------- process monitor


def vm_hwm_mib(pid: int) -> float | None:
    """The kernel's peak-RSS high-water mark for a process (Linux only)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _postgres_processes(databases: Sequence[str] = ()) -> list[psutil.Process]:
    """The PostgreSQL server's processes on this host (read-only, by process name).

    With `databases`, only those that work for them: their client backends (and parallel workers),
    plus the postmaster and its auxiliary processes (checkpointer, WAL writer, ...), which every
    database shares; other databases' backends (another workload on the same server) are left out.
    """
    procs = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info.get("name") in ("postgres", "postmaster")
    ]
    if not databases:
        return procs
    wanted = set(databases)
    titles = {p.pid: " ".join(p.info.get("cmdline") or []) for p in procs}
    backends = {p.pid for p in procs if wanted & set(titles[p.pid].split())}
    ours = []
    for p in procs:
        title = titles[p.pid]
        worker = re.search(r"parallel worker for PID (\d+)", title)
        if worker:
            if int(worker.group(1)) in backends:
                ours.append(p)
        elif p.pid in backends or not re.search(r"\(\d+\)|\[local\]|autovacuum worker", title):
            ours.append(p)
    return ours


def _postgres_cpu_seconds(databases: Sequence[str] = ()) -> dict[str, float]:
    """CPU seconds of each PostgreSQL server process (see _postgres_processes), by "pg:<pid>".

    Plus "pg:exited": the CPU of the server processes that have exited, which the postmaster
    collects as its children's times, so that a backend that lived and died between two readings
    (a connection opened and closed within the phase) is counted too, whichever database it served.
    """
    out = {}
    for proc in _postgres_processes(databases):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            out[f"pg:{proc.pid}"] = times.user + times.system
            postmaster = "-D" in (proc.info.get("cmdline") or []) or proc.info.get("name") == "postmaster"
            if postmaster:
                out["pg:exited"] = out.get("pg:exited", 0.0) + times.children_user + times.children_system
    return out


def postgres_pss_mib(databases: Sequence[str]) -> float | None:
    """Proportional set size of the PostgreSQL processes working for `databases`, added up.

    PSS rather than RSS: every server process maps the shared buffers, and RSS would count them
    once per process. Linux only (smaps_rollup); None where it cannot be read.
    """
    total = 0
    for proc in _postgres_processes(databases):
        try:
            total += proc.memory_full_info().pss
        except (psutil.Error, AttributeError):
            return None
    return total / (1024 * 1024)


class Monitor:
    """Samples RSS of each process every SAMPLE_INTERVAL seconds in a thread, keeping the max per phase.

    A thread rather than an asyncio task, so that a busy event loop in the load generator does not
    delay the samples. CPU use per phase comes from the processes' cumulative CPU times: `cpu` holds
    percent of one core, `cpu_seconds` the seconds used, per phase and process.

    `watch_postgres` adds a `postgres` row: the CPU of every PostgreSQL server process or, given
    `pg_databases`, of those working for these databases only, and then also their memory (PSS).
    """

    def __init__(
        self, pids: Mapping[str, int], *, watch_postgres: bool = False, pg_databases: Sequence[str] = ()
    ) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.watch_postgres = watch_postgres
        self.pg_databases = tuple(pg_databases) if watch_postgres else ()
        self.peaks: dict[str, dict[str, float]] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self.cpu_seconds: dict[str, dict[str, float]] = {}
        self.elapsed: dict[str, float] = {}
        self._phase = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._cpu_start: dict[str, float] = {}
        self._t0 = 0.0

    def rss_mib(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                out[name] = proc.memory_info().rss / (1024 * 1024)
        if self.pg_databases:
            pss = postgres_pss_mib(self.pg_databases)
            if pss is not None:
                out[POSTGRES] = pss
        return out

    def hwm_mib(self) -> dict[str, float | None]:
        return {name: vm_hwm_mib(proc.pid) for name, proc in self.procs.items()}

    def _cpu_now(self) -> dict[str, float]:
        total = psutil.cpu_times()
        busy = ("user", "nice", "system", "irq", "softirq")  # guest time is already inside user/nice
        out = {MACHINE: sum(getattr(total, f, 0.0) for f in busy)}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[name] = t.user + t.system
        if self.watch_postgres:
            out |= _postgres_cpu_seconds(self.pg_databases)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL)

    def sample(self) -> None:
        rss = self.rss_mib()
        with self._lock:
            if not self._phase:
                return
            peaks = self.peaks.setdefault(self._phase, {})
            for name, value in rss.items():
                peaks[name] = max(peaks.get(name, 0.0), value)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def begin(self, phase: str) -> None:
        with self._lock:
            self._phase = phase
        self._cpu_start = self._cpu_now()
        self._t0 = time.monotonic()
        self.sample()

    def end(self) -> None:
        self.sample()
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        now = self._cpu_now()
        phase = self._phase
        used = {
            name: now[name] - self._cpu_start[name]
            for name in now
            if name in self._cpu_start and not name.startswith("pg:")
        }
        if self.watch_postgres:
            # Server processes started during the phase count from zero; ones that exited during it
            # are in "pg:exited" (the postmaster's children's times), less any time before the start.
            pg = sum(v - self._cpu_start.get(k, 0.0) for k, v in now.items() if k.startswith("pg:"))
            gone = sum(v for k, v in self._cpu_start.items() if k.startswith("pg:") and k not in now)
            used[POSTGRES] = pg - gone
        ours = sum(v for k, v in used.items() if k != MACHINE)
        used[OTHER] = max(0.0, used[MACHINE] - ours)
        self.cpu_seconds[phase] = used
        self.cpu[phase] = {name: 100.0 * value / elapsed for name, value in used.items()}
        self.elapsed[phase] = elapsed
        with self._lock:
            self._phase = ""


def monitor_for(stack: Stack, backend: str, pg_databases: Sequence[str] = ()) -> Monitor:
    """A monitor of every process of the stack, plus this one (the load generator)."""
    pids = {proc.name: proc.popen.pid for proc in stack.procs}
    pids[LOADGEN] = os.getpid()
    return Monitor(pids, watch_postgres=backend == "postgres", pg_databases=pg_databases)


# ----------------------------------------------------------------------------- PostgreSQL


async def pg_sessions(databases: Sequence[str]) -> dict[str, int]:
    """Sessions (connections) established to each database so far, from pg_stat_database.

    The server counts them with a delay of up to about a second (statistics are flushed at most
    once a second per backend, and when a backend exits).
    """
    conn = await pg_connect()
    try:
        rows = await conn.fetch(
            "SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY($1::text[])", list(databases)
        )
    finally:
        await conn.close()
    return {row["datname"]: int(row["sessions"] or 0) for row in rows}


# ----------------------------------------------------------------------------- the stack


class StackFailed(RuntimeError):
    """The stack did not start (the processes' logs have been printed)."""


def telemetry_env(otel: bool) -> dict[str, str]:
    """Telemetry off, or on with no exporter (to measure the instrumentation's own cost)."""
    env = {"GOV_LOG_LEVEL": "WARNING"}
    if otel:
        env |= {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    else:
        env["OTEL_SDK_DISABLED"] = "true"
    return env


# Login costs for runs that only log in during setup (argon2id with these is ~1 ms, not ~0.2 s).
CHEAP_ARGON2 = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}


def identity_env(argon2: Mapping[str, int] = CHEAP_ARGON2) -> dict[str, str]:
    """Identity's environment for a benchmark stack: a fresh passphrase, the argon2 cost set
    explicitly (a GOV_ARGON2_* left in the shell cannot skew the result), and access tokens that
    outlive the timed phases (the TTL does not affect the cost)."""
    return {
        "GOV_SIGNING_KEY_PASSPHRASE": secrets.token_urlsafe(24),
        "GOV_ARGON2_TIME_COST": str(argon2["time_cost"]),
        "GOV_ARGON2_MEMORY_KIB": str(argon2["memory_kib"]),
        "GOV_ARGON2_PARALLELISM": str(argon2["parallelism"]),
        "GOV_ACCESS_TOKEN_TTL_SECONDS": "3600",
    }


def print_logs(stack: Stack, what: str = "log") -> None:
    for proc in stack.procs:
        print(f"--- {proc.name} {what} ---\n{proc.tail()}", file=sys.stderr)


@contextlib.contextmanager
def logs_on_failure(stack: Stack) -> Iterator[None]:
    """Print the processes' log tails when the measurement raises: the cause is usually there."""
    try:
        yield
    except Exception:
        print_logs(stack, "log (tail)")
        raise


@contextlib.contextmanager
def running_stack(
    data_dir: Path,
    backend: str,
    *,
    admin_password: str,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    gateway_env: Mapping[str, str] | None = None,
    otel: bool = False,
    databases: list[str] | None = None,
) -> Iterator[Stack]:
    """NATS, every service (each on a fresh database, identity with an admin) and the gateway.

    `service_env` adds environment variables per service (e.g. identity's argon2 parameters).
    Raises StackFailed, after printing the logs, if anything does not start. On exit every process
    is stopped and the PostgreSQL databases are dropped. `databases`, if given, receives the names
    of the PostgreSQL databases created.
    """
    stack = Stack(data_dir / "stack", base_env=telemetry_env(otel))
    pg_dbs: list[str] = [] if databases is None else databases
    extra = service_env or {}
    try:
        print(f"starting stack in {data_dir} (backend {backend}, services {', '.join(SERVICES)}) ...")
        try:
            stack.start_nats()
            # Every service `make run` starts (the gateway needs them all to be ready), each with a
            # fresh database of its own. Services started later get the earlier ones' addresses.
            for service in SERVICES:
                if backend == "postgres":
                    name, db_url = create_pg_database(service)
                    pg_dbs.append(name)
                else:
                    db_url = f"sqlite+aiosqlite:///{data_dir}/{service}.db"
                env = {"GOV_DATABASE_URL": db_url, **extra.get(service, {})}
                stack.run_command(service, "migrate", env)
                if service == "identity":
                    admin = {"ADMIN_LOGIN": ADMIN_LOGIN, "ADMIN_PASSWORD": admin_password}
                    stack.run_command("identity", "create-admin", {**env, **admin})
                if service == "notifications":  # reads contact details as its own service account
                    env.update(stack.create_service_account("notifications", ADMIN_LOGIN, admin_password))
                stack.start_service(service, env)
            stack.start_gateway(env=dict(gateway_env or {}))
        except Exception as exc:
            print(f"error: the stack did not start: {exc}", file=sys.stderr)
            print_logs(stack)
            raise StackFailed(str(exc)) from exc
        yield stack
    finally:
        stack.stop()
        for name in pg_dbs:
            drop_pg_database(name)


def run_on_stack(
    prefix: str,
    backend: str,
    measure: Callable[[Stack, Path], int],
    *,
    keep: bool = False,
    admin_password: str,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    gateway_env: Mapping[str, str] | None = None,
    otel: bool = False,
    databases: list[str] | None = None,
) -> int:
    """`measure(stack, folder)` on a running_stack() in a fresh temporary folder (kept if `keep`):
    its exit code, or 2 if the stack did not start."""
    with temp_folder(prefix, keep=keep) as folder:
        try:
            with running_stack(
                folder,
                backend,
                admin_password=admin_password,
                service_env=service_env,
                gateway_env=gateway_env,
                otel=otel,
                databases=databases,
            ) as stack:
                return measure(stack, folder)
        except StackFailed:
            return 2


T = TypeVar("T")


def run_monitored(
    stack: Stack, backend: str, databases: Sequence[str], run: Callable[[Monitor], Coroutine[Any, Any, T]]
) -> tuple[T, Monitor]:
    """`run(monitor)` with the stack's processes monitored from its start to its end: its result,
    and the closed monitor holding the numbers."""
    monitor = monitor_for(stack, backend, pg_databases=databases)
    monitor.start()
    try:
        return asyncio.run(run(monitor)), monitor
    finally:
        monitor.close()


def dead_processes(stack: Stack) -> list[str]:
    return [p.name for p in stack.procs if p.popen.poll() is not None]


async def admin_token(base_url: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        response = await client.post(
            "/api/v1/auth/token", data={"username": ADMIN_LOGIN, "password": password}
        )
        response.raise_for_status()
        return response.json()["access_token"]


# ----------------------------------------------------------------------------- report helpers


def machine_info() -> dict[str, Any]:
    cpus = os.cpu_count() or 0
    return {
        "cpu_count": cpus,
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus,
        "cpu_model": cpu_model(),
        "memory_mib": round(psutil.virtual_memory().total / (1024 * 1024)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_line(cpu: Mapping[str, float]) -> str:
    """One phase's CPU (% of one core) per process, then the machine's and everyone else's."""
    row = ", ".join(f"{k} {fmt1(v)}" for k, v in sorted(cpu.items()) if k not in (MACHINE, OTHER))
    return f"{row}; machine {fmt1(cpu.get(MACHINE))}, other {fmt1(cpu.get(OTHER))}"


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(textwrap.fill(f"WARNING: {warning}", width=100, subsequent_indent="         "))


def other_cpu_warnings(monitor: Monitor, phases: list[str]) -> list[str]:
    return [
        f"processes outside the benchmark used {monitor.cpu[phase][OTHER]:.0f}% CPU during '{phase}': "
        "another workload shared the machine, so this run's numbers are disturbed; rerun when it is quiet"
        for phase in phases
        if monitor.cpu.get(phase, {}).get(OTHER, 0.0) > OTHER_CPU_WARNING
    ]
