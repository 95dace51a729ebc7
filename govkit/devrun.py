"""`make run`: the whole platform on one machine, with an embedded NATS server and SQLite."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from govkit.devstack import REPO, SERVICES, Stack

DATA = REPO / ".data"
SECRETS_FILE = DATA / "dev-secrets.env"
OPEN311_KEY_FILE = DATA / "open311-api-key"  # written by demo.seed_tickets (chmod 600)
BANK_KEY_FILE = DATA / "bank-api-key"  # written by demo.seed_points (chmod 600)


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


def run() -> int:
    values = dev_secrets()
    passphrase = values["GOV_SIGNING_KEY_PASSPHRASE"]
    admin_login = os.environ.get("ADMIN_LOGIN", "admin")
    admin_password = os.environ.get("ADMIN_PASSWORD", values["DEV_ADMIN_PASSWORD"])
    http_port = int(os.environ.get("GOV_HTTP_PORT", "8080"))
    stack = Stack(DATA, base_env={"OTEL_SDK_DISABLED": os.environ.get("OTEL_SDK_DISABLED", otel_disabled())})

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        print("starting NATS (JetStream, data in .data/nats) ...")
        stack.start_nats(streams=False)
        # What the Helm chart's hook Job does before the services start: they never create streams.
        print("applying the stream declarations (python -m govkit.streams apply) ...")
        print("  " + stack.apply_streams().strip().replace("\n", "\n  "))
        migrate(stack, passphrase)
        stack.run_command(
            "identity",
            "create-admin",
            {
                **service_env("identity", passphrase),
                "ADMIN_LOGIN": admin_login,
                "ADMIN_PASSWORD": admin_password,
            },
        )
        for service in SERVICES:
            extra: dict[str, str] = {}
            if service == "notifications":
                # Its own service account reads contact details and staffing (a new one each run).
                extra = stack.create_service_account("notifications", admin_login, admin_password)
            stack.start_service(service, service_env(service, passphrase, extra))
            print(f"  {service} serving on {stack.addrs[service]}")
        # Every seeder gets every address and key file; each reads the ones it needs.
        seed_env = {
            **{f"GOV_{name.upper()}_ADDR": addr for name, addr in stack.addrs.items() if name in SERVICES},
            "ADMIN_LOGIN": admin_login,
            "ADMIN_PASSWORD": admin_password,
            "DEMO_STAFF_PASSWORD": values["DEV_STAFF_PASSWORD"],
            "OPEN311_API_KEY_FILE": str(OPEN311_KEY_FILE),
            "BANK_API_KEY_FILE": str(BANK_KEY_FILE),
        }
        print("seeding the demo street (万楼街道) ...")
        demo_summary = seed(stack, "demo.seed_blocks", seed_env)
        tickets_summary = points_summary = ""
        if "tickets" in stack.addrs:
            print("seeding the tickets demo (units, categories, demo tickets) ...")
            tickets_summary = seed(stack, "demo.seed_tickets", seed_env)
        if "points" in stack.addrs:
            print("seeding the points demo (indicators, love bank, awards, red list, partner bank) ...")
            points_summary = seed(stack, "demo.seed_points", seed_env)
        notifications_summary = ""
        if "notifications" in stack.addrs:
            print("seeding the notifications demo (a notice to a community, some of it read) ...")
            notifications_summary = seed(stack, "demo.seed_notifications", seed_env)
        stack.start_gateway(http_port)
    except (RuntimeError, TimeoutError, KeyboardInterrupt) as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        for proc in stack.procs:
            print(f"--- {proc.name} (last lines of {proc.log_path})\n{proc.tail()}", file=sys.stderr)
        stack.stop()
        return 1

    url = stack.gateway_url
    metrics = "\n                         ".join(f"{name:9} {u}" for name, u in stack.metrics_urls.items())
    if tickets_summary:
        tickets_summary = f"""
  {tickets_summary}
  Open311 GeoReport v2   curl -s {url}/open311/v2/services.json
  The resident and unit staff accounts above use the demo staff password too.
"""
    if points_summary:
        tickets_summary += f"""
  {points_summary}
  Points (gRPC, {stack.addrs["points"]}): the leader and resident above use the demo staff password.
"""
    if notifications_summary:
        tickets_summary += f"""
  {notifications_summary}
"""
    print(
        f"""
The platform is running.
  API docs (Swagger UI)  {url}/docs
  OpenAPI document       {url}/openapi.json
  Health                 {url}/healthz  {url}/readyz
  NATS                   {stack.nats_url}
  Metrics (Prometheus)   {metrics}
  Logs                   {DATA / "logs"}/
  Admin login            {admin_login}
  Admin password         {admin_password}   (set ADMIN_LOGIN / ADMIN_PASSWORD to choose your own)

  {demo_summary}
  Every demo staff account above logs in by phone with the password {values["DEV_STAFF_PASSWORD"]}
{tickets_summary}
Try:  curl -s -d 'username={admin_login}&password=<password>' {url}/api/v1/auth/token
Watch an inbox live (Server-Sent Events; log in as a demo account above, e.g. the resident):
      TOKEN=$(curl -s -d 'username=<login>&password=<password>' {url}/api/v1/auth/token \\
              | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
      curl -N -H "Authorization: Bearer $TOKEN" {url}/api/v1/notifications/stream
Press Ctrl-C to stop.
""",
        flush=True,
    )
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
