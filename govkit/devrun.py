"""`make run`: the whole platform on one machine, with an embedded NATS server and SQLite."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from govkit.devstack import REPO, SERVICES, Stack, free_port

if TYPE_CHECKING:
    from govkit.devhost import DevHost

# GOV_DEVRUN_DATA moves it (the tests run `make run` in a folder of their own).
DATA = Path(os.environ.get("GOV_DEVRUN_DATA", REPO / ".data"))
SECRETS_FILE = DATA / "dev-secrets.env"
OPEN311_KEY_FILE = DATA / "open311-api-key"  # written by demo.seed_tickets (chmod 600)
BANK_KEY_FILE = DATA / "bank-api-key"  # written by demo.seed_points (chmod 600)
# `host` (the default): every service and the gateway in one process (govkit.devhost), ~1/3 of the
# memory; `processes`: one process each, as in production.
MODE_VARIABLE = "GOV_DEVRUN_MODE"
# The demo seeders in order (each `python -m <module>`), and what each seeds.
SEEDERS = (
    ("demo.seed_blocks", "the demo street (万楼街道)"),
    ("demo.seed_tickets", "the tickets demo (units, categories, demo tickets)"),
    ("demo.seed_points", "the points demo (indicators, love bank, awards, red list, partner bank)"),
    ("demo.seed_notifications", "the notifications demo (a notice to a community, some of it read)"),
)


def dev_secrets() -> dict[str, str]:
    """Random secrets made on first run and kept in .data/ (git-ignored), never in code."""
    values: dict[str, str] = {}
    if SECRETS_FILE.exists():
        for line in SECRETS_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    wanted: dict[str, Callable[[], str]] = {
        "GOV_SIGNING_KEY_PASSPHRASE": lambda: secrets.token_urlsafe(32),
        "DEV_ADMIN_PASSWORD": lambda: "Gov-" + secrets.token_urlsafe(9),
        "DEV_STAFF_PASSWORD": lambda: "Staff-" + secrets.token_urlsafe(9),
    }
    changed = False
    for key, make in wanted.items():
        if key not in values:
            values[key] = make()
            changed = True
    if changed:
        DATA.mkdir(exist_ok=True)
        SECRETS_FILE.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        SECRETS_FILE.chmod(0o600)
    return values


def service_env(service: str, passphrase: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "GOV_DATABASE_URL": os.environ.get(
            f"{service.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{DATA}/{service}.db"
        )
    }
    if service == "identity":
        env["GOV_SIGNING_KEY_PASSPHRASE"] = os.environ.get("GOV_SIGNING_KEY_PASSPHRASE", passphrase)
    return {**env, **(extra or {})}


def otel_disabled() -> str:
    """OTEL_SDK_DISABLED's default for `make run`: tracing on only when something receives the spans
    (an OTLP endpoint or an exporter named). With nowhere to send them, the SDK and the gRPC
    instrumentation cost every call some CPU and every process some memory for nothing; the request
    id still ties a request's log lines together."""
    exported = (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_TRACES_EXPORTER", "none") != "none"
    )
    return "false" if exported else "true"


def migrate(stack: Stack, passphrase: str) -> None:
    for service in SERVICES:
        stack.run_command(service, "migrate", service_env(service, passphrase))
        print(f"  migrated {service}")


def seed(stack: Stack, module: str, env: dict[str, str]) -> str:
    """Run one demo seeder (`python -m module`) against the stack: what it seeded, or RuntimeError."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and a demo module named here
        [sys.executable, "-m", module], env=stack.env(**env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def prepare(stack: Stack, passphrase: str, admin_login: str, admin_password: str) -> None:
    """What runs before anything serves: NATS, its streams, every migration, the first admin."""
    print(f"starting NATS (JetStream, data in {stack.data_dir / 'nats'}) ...")
    stack.start_nats(streams=False)
    # What the Helm chart's hook Job does before the services start: they never create streams.
    print("applying the stream declarations (python -m govkit.streams apply) ...")
    print("  " + stack.apply_streams().strip().replace("\n", "\n  "))
    migrate(stack, passphrase)
    stack.run_command(
        "identity",
        "create-admin",
        {**service_env("identity", passphrase), "ADMIN_LOGIN": admin_login, "ADMIN_PASSWORD": admin_password},
    )


def seed_demo(stack: Stack, values: dict[str, str], admin_login: str, admin_password: str) -> dict[str, str]:
    """Every demo seeder against the running services: what each seeded, by its module."""
    # Every seeder gets every address and key file; each reads the ones it needs.
    seed_env = {
        **{f"GOV_{name.upper()}_ADDR": addr for name, addr in stack.addrs.items() if name in SERVICES},
        "ADMIN_LOGIN": admin_login,
        "ADMIN_PASSWORD": admin_password,
        "DEMO_STAFF_PASSWORD": values["DEV_STAFF_PASSWORD"],
        "OPEN311_API_KEY_FILE": str(OPEN311_KEY_FILE),
        "BANK_API_KEY_FILE": str(BANK_KEY_FILE),
    }
    summaries: dict[str, str] = {}
    for module, what in SEEDERS:
        print(f"seeding {what} ...")
        summaries[module] = seed(stack, module, seed_env)
    return summaries


def banner(
    stack: Stack, values: dict[str, str], admin_login: str, admin_password: str, seeded: dict[str, str]
) -> str:
    url = stack.gateway_url
    metrics = "\n                         ".join(f"{name:9} {u}" for name, u in stack.metrics_urls.items())
    more = f"""
  {seeded["demo.seed_tickets"]}
  Open311 GeoReport v2   curl -s {url}/open311/v2/services.json
  The resident and unit staff accounts above use the demo staff password too.

  {seeded["demo.seed_points"]}
  Points (gRPC, {stack.addrs["points"]}): the leader and resident above use the demo staff password.

  {seeded["demo.seed_notifications"]}
"""
    return f"""
The platform is running.
  API docs (Swagger UI)  {url}/docs
  OpenAPI document       {url}/openapi.json
  Health                 {url}/healthz  {url}/readyz
  NATS                   {stack.nats_url}
  Metrics (Prometheus)   {metrics}
  Logs                   {DATA / "logs"}/
  Admin login            {admin_login}
  Admin password         {admin_password}   (set ADMIN_LOGIN / ADMIN_PASSWORD to choose your own)

  {seeded["demo.seed_blocks"]}
  Every demo staff account above logs in by phone with the password {values["DEV_STAFF_PASSWORD"]}
{more}
Try:  curl -s -d 'username={admin_login}&password=<password>' {url}/api/v1/auth/token
Watch an inbox live (Server-Sent Events; log in as a demo account above, e.g. the resident):
      TOKEN=$(curl -s -d 'username=<login>&password=<password>' {url}/api/v1/auth/token \\
              | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
      curl -N -H "Authorization: Bearer $TOKEN" {url}/api/v1/notifications/stream
Press Ctrl-C to stop.
"""


def print_failure(stack: Stack, exc: BaseException) -> None:
    print(f"start-up failed: {exc}", file=sys.stderr)
    for proc in stack.procs:
        print(f"--- {proc.name} (last lines of {proc.log_path})\n{proc.tail()}", file=sys.stderr)


def run() -> int:
    mode = os.environ.get(MODE_VARIABLE, "host")
    if mode not in ("host", "processes"):
        print(f"{MODE_VARIABLE} must be host or processes, not {mode!r}", file=sys.stderr)
        return 2
    values = dev_secrets()
    admin = (
        os.environ.get("ADMIN_LOGIN", "admin"),
        os.environ.get("ADMIN_PASSWORD", values["DEV_ADMIN_PASSWORD"]),
    )
    http_port = int(os.environ.get("GOV_HTTP_PORT", "8080"))
    otel = {"OTEL_SDK_DISABLED": os.environ.get("OTEL_SDK_DISABLED", otel_disabled())}
    stack = Stack(DATA, base_env=otel, nats_own_session=True)  # stopped last, by us (Stack.stop)
    if mode == "host":
        os.environ.update(otel)  # this process is the host: govkit.telemetry reads its environment
        return run_host(stack, values, admin, http_port)
    return run_processes(stack, values, admin, http_port)


def run_processes(stack: Stack, values: dict[str, str], admin: tuple[str, str], http_port: int) -> int:
    """Each service and the gateway in a process of its own, as in production."""
    passphrase = values["GOV_SIGNING_KEY_PASSPHRASE"]
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        prepare(stack, passphrase, *admin)
        for service in SERVICES:
            extra: dict[str, str] = {}
            if service == "notifications":
                # Its own service account reads contact details and staffing (a new one each run).
                extra = stack.create_service_account("notifications", *admin)
            stack.start_service(service, service_env(service, passphrase, extra))
            print(f"  {service} serving on {stack.addrs[service]}")
        seeded = seed_demo(stack, values, *admin)
        stack.start_gateway(http_port)
    except (RuntimeError, TimeoutError, KeyboardInterrupt) as exc:
        print_failure(stack, exc)
        stack.stop()
        return 1
    print(banner(stack, values, *admin, seeded), flush=True)
    try:
        while not stopping:
            for proc in stack.procs:
                if proc.popen.poll() is not None:
                    print(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("\nstopping ...")
    stack.stop()
    print("stopped.")
    return 0


def run_host(stack: Stack, values: dict[str, str], admin: tuple[str, str], http_port: int) -> int:
    """Every service and the gateway in this process (govkit.devhost); NATS, migrations and seeders
    stay processes of their own."""
    # Imported here: the services, the gateway and uvloop are for this mode only.
    import uvloop

    try:
        prepare(stack, values["GOV_SIGNING_KEY_PASSPHRASE"], *admin)
    except (RuntimeError, TimeoutError, KeyboardInterrupt) as exc:
        print_failure(stack, exc)
        stack.stop()
        return 1
    try:
        # The gateway's loop (GOV_HTTP_LOOP's default) for everything in the process.
        return uvloop.run(_host(stack, values, admin, http_port))
    finally:
        stack.stop()  # NATS, once the services have drained


async def _host(stack: Stack, values: dict[str, str], admin: tuple[str, str], http_port: int) -> int:
    from govkit.devhost import DevHost

    host = DevHost(DATA / "logs", os.environ.get("GOV_LOG_LEVEL", "INFO"))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    starting = asyncio.create_task(_start_host(host, stack, values, admin, http_port))
    stop_wait = asyncio.create_task(stopping.wait())
    await asyncio.wait((starting, stop_wait), return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if not starting.done():  # Ctrl-C while starting (a seeder running gets it too, and ends)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        status = 1
    elif starting.exception() is not None:
        # Ctrl-C reaches a running seeder too, and its failure can end the start first: that is the
        # interruption, not a failure to report.
        if not stopping.is_set():
            await asyncio.sleep(0.2)
        if stopping.is_set():
            print("interrupted while starting", file=sys.stderr)
        else:
            print(f"start-up failed: {starting.exception()} (logs in {DATA / 'logs'}/)", file=sys.stderr)
        status = 1
    else:
        print(banner(stack, values, *admin, starting.result()), flush=True)
        failed = asyncio.create_task(host.failed.wait())
        await asyncio.wait((stop_wait, failed), return_when=asyncio.FIRST_COMPLETED)
        if failed.done() and not stopping.is_set():
            print(f"the gateway stopped (see {DATA / 'logs' / 'gateway.log'})", file=sys.stderr)
            status = 1
        failed.cancel()
    stop_wait.cancel()
    print("\nstopping ...")
    await host.stop()
    print("stopped.")
    return status


async def _start_host(
    host: DevHost, stack: Stack, values: dict[str, str], admin: tuple[str, str], http_port: int
) -> dict[str, str]:
    """Serve each service on a free port of its own and the gateway on `http_port`, as the processes
    would with the same environment; then seed the demo (in a thread: the seeders call this loop)."""
    passphrase = values["GOV_SIGNING_KEY_PASSPHRASE"]
    metrics_port = host.serve_metrics(free_port())
    stack.metrics_urls["devhost"] = f"http://127.0.0.1:{metrics_port}/metrics"
    ports = {service: free_port() for service in SERVICES}
    addrs = {f"GOV_{service.upper()}_ADDR": f"127.0.0.1:{port}" for service, port in ports.items()}
    common = {"GOV_GRPC_HOST": "127.0.0.1", "GOV_NATS_URL": stack.nats_url, **addrs}
    for service in SERVICES:
        extra: dict[str, str] = {}
        if service == "notifications":
            # Its own service account reads contact details and staffing (a new one each run).
            extra = await asyncio.to_thread(stack.create_service_account, "notifications", *admin)
        environ = _hosted_env(
            stack, {**common, "GOV_GRPC_PORT": str(ports[service])}, service_env(service, passphrase, extra)
        )
        await host.start_service(service, environ)
        stack.addrs[service] = f"127.0.0.1:{ports[service]}"
        print(f"  {service} serving on {stack.addrs[service]}")
    stack.gateway_url = await host.start_gateway(
        _hosted_env(stack, {**common, "GOV_HTTP_HOST": "127.0.0.1", "GOV_HTTP_PORT": str(http_port)}, {})
    )
    return await asyncio.to_thread(seed_demo, stack, values, *admin)


def _hosted_env(stack: Stack, *layers: dict[str, str]) -> dict[str, str]:
    """A hosted component's environment: what its process would get (the stack's, then `layers`),
    with no metrics port: the host serves one for all."""
    environ = stack.env()
    for layer in layers:
        environ.update(layer)
    environ.pop("GOV_METRICS_PORT", None)
    return environ


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m govkit.devrun")
    parser.add_argument("command", choices=["run", "migrate"])
    args = parser.parse_args()
    if args.command == "migrate":
        migrate(Stack(DATA), dev_secrets()["GOV_SIGNING_KEY_PASSPHRASE"])
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
