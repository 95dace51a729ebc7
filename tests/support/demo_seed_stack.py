"""`make run`'s seeding on a stack of its own: start NATS and the services, run the demo seeders twice
(the second run must change nothing), print what happened as one JSON line.

    python -m tests.support.demo_seed_stack DATA_DIR IDENTITY_DB_URL BLOCKS_DB_URL TICKETS_DB_URL

Run by tests/integration/test_fresh_boot.py under a monotonic clock that starts near zero, so every
process of the stack (services, seeders) runs as on a machine booted a moment ago.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc

from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from tests.conftest import IDENTITY_ENV, TELEMETRY_ENV
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD

STAFF_PASSWORD = "demo-staff-password"


async def ticket_states(stack: Stack) -> dict[str, int]:
    async with (
        grpc.aio.insecure_channel(stack.addrs["identity"]) as ich,
        grpc.aio.insecure_channel(stack.addrs["tickets"]) as tch,
    ):
        login = ipb.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD)
        token = (await IdentityServiceStub(ich).Login(login)).access_token
        md = (("authorization", f"Bearer {token}"),)
        states: Counter[str] = Counter()
        page_token = ""
        while True:
            page = await TicketsServiceStub(tch).ListTickets(
                pb.ListTicketsRequest(page_size=100, page_token=page_token), metadata=md
            )
            states.update(pb.TicketState.Name(t.state) for t in page.tickets)
            page_token = page.next_page_token
            if not page_token:
                return dict(states)


def main() -> int:
    data_dir, identity_db, blocks_db, tickets_db = sys.argv[1:5]
    report: dict[str, object] = {"monotonic_at_start": time.monotonic(), "runs": []}
    stack = Stack(Path(data_dir), base_env=TELEMETRY_ENV)
    try:
        stack.start_nats()
        envs = {
            "identity": {**IDENTITY_ENV, "GOV_DATABASE_URL": identity_db},
            "blocks": {"GOV_DATABASE_URL": blocks_db},
            "tickets": {"GOV_DATABASE_URL": tickets_db},
        }
        for service, env in envs.items():
            stack.run_command(service, "migrate", env)
        admin = {"ADMIN_LOGIN": ADMIN_LOGIN, "ADMIN_PASSWORD": ADMIN_PASSWORD}
        stack.run_command("identity", "create-admin", {**envs["identity"], **admin})
        for service, env in envs.items():
            stack.start_service(service, env)
        seed_env = stack.env(
            GOV_IDENTITY_ADDR=stack.addrs["identity"],
            GOV_BLOCKS_ADDR=stack.addrs["blocks"],
            GOV_TICKETS_ADDR=stack.addrs["tickets"],
            DEMO_STAFF_PASSWORD=STAFF_PASSWORD,
            OPEN311_API_KEY_FILE=str(Path(data_dir) / "open311-api-key"),
            **admin,
        )
        runs: list[dict[str, object]] = []
        report["runs"] = runs
        for _ in range(2):
            for module in ("demo.seed_blocks", "demo.seed_tickets"):
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", module], env=seed_env, capture_output=True, text=True, check=False
                )
                runs.append(
                    {
                        "module": module,
                        "monotonic_at_start": started,
                        "returncode": done.returncode,
                        "stdout": done.stdout,
                        "stderr": done.stderr,
                    }
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{module} failed")
        report["ticket_states"] = asyncio.run(ticket_states(stack))
    except (RuntimeError, TimeoutError) as exc:
        report["error"] = str(exc)
        report["logs"] = {p.name: p.tail() for p in stack.procs}
    finally:
        stack.stop()
    print(json.dumps(report, ensure_ascii=False))
    return 0 if "error" not in report else 1


if __name__ == "__main__":
    raise SystemExit(main())
