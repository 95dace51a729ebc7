"""`make run`'s seeding on a stack of its own: start NATS and the services, run the demo seeders twice
(the second run must change nothing), print what happened as one JSON line: the tickets' states, and
what the points demo holds (read back through the points API as its leader, the ledger proven by
`python -m services.points verify` and every balance recomputed from the entries table).

    python -m tests.support.demo_seed_stack DATA_DIR IDENTITY_DB_URL BLOCKS_DB_URL TICKETS_DB_URL \
        POINTS_DB_URL NOTIFICATIONS_DB_URL

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
from sqlalchemy import select

from demo import points as demo_points
from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.points.v1 import points_pb2 as ppb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.db import Database
from govkit.devstack import REPO, Stack
from services.points.models import Account, Entry, Redemption
from tests.conftest import IDENTITY_ENV, STACK_ENV
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD

STAFF_PASSWORD = "demo-staff-password"
# In `make run`'s order (govkit/devrun.py).
SEEDERS = ("demo.seed_blocks", "demo.seed_tickets", "demo.seed_points", "demo.seed_notifications")


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


async def _pages(method, request, field: str, md) -> list:  # type: ignore[no-untyped-def]
    items: list = []  # type: ignore[type-arg]
    while True:
        page = await method(request, metadata=md)
        items += list(getattr(page, field))
        if not page.next_page_token:
            return items
        request.page_token = page.next_page_token


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def points_demo(stack: Stack, points_db: str) -> dict[str, object]:
    """What the points demo holds, read as the admin through the API, and the ledger recomputed."""
    district, street = demo_points.DISTRICT, demo_points.STREET
    async with (
        grpc.aio.insecure_channel(stack.addrs["identity"]) as ich,
        grpc.aio.insecure_channel(stack.addrs["points"]) as pch,
    ):
        login = ipb.LoginRequest(login=ADMIN_LOGIN, password=ADMIN_PASSWORD)
        md = (("authorization", f"Bearer {(await IdentityServiceStub(ich).Login(login)).access_token}"),)
        points = PointsServiceStub(pch)
        indicators = await _pages(
            points.ListIndicators,
            ppb.ListIndicatorsRequest(node=district, published_here=True, page_size=200),
            "indicators",
            md,
        )
        shops = await _pages(
            points.ListExchangePoints, ppb.ListExchangePointsRequest(page_size=200), "exchange_points", md
        )
        items = {}
        for shop in shops:
            found = await _pages(
                points.ListItems, ppb.ListItemsRequest(parent=shop.name, page_size=200), "items", md
            )
            items[shop.node] = len(found)
        awards = await _pages(
            points.ListAwards, ppb.ListAwardsRequest(node=street, page_size=200), "awards", md
        )
        rankings = await _pages(
            points.ListRankings, ppb.ListRankingsRequest(node=street, page_size=200), "rankings", md
        )
        policy = await points.GetCreditPolicy(
            ppb.GetCreditPolicyRequest(name=f"creditPolicies/{district}"), metadata=md
        )
        banks = await _pages(
            IdentityServiceStub(ich).ListServiceAccounts,
            ipb.ListServiceAccountsRequest(page_size=200),
            "service_accounts",
            md,
        )
        db = Database(points_db)
        try:
            async with db.sessions() as session:
                accounts = list((await session.scalars(select(Account))).all())
                entries = list((await session.scalars(select(Entry))).all())
                redemptions = list((await session.scalars(select(Redemption))).all())
        finally:
            await db.close()
        # Every balance from the API against the sum of the account's posted entries.
        mismatched = []
        for account in accounts:
            summed = 0
            for e in entries:
                if e.account_id == account.id and e.phase in ("posted", "post"):
                    summed += e.amount if e.credit_account.endswith(account.id) else -e.amount
            shown = await points.GetAccount(ppb.GetAccountRequest(name=f"accounts/{account.id}"), metadata=md)
            if shown.balance != summed:
                mismatched.append(f"{account.id}: balance {shown.balance}, entries {summed}")
    return {
        "indicators": len(indicators),
        "indicators_in_chinese": sum(_cjk(i.display_name) for i in indicators),
        "exchange_points": sorted(s.node for s in shops),
        "items": items,
        "awards": len(awards),
        "award_recipients": len({a.recipient for a in awards}),
        "award_kinds": sorted({ppb.IndicatorKind.Name(a.kind) for a in awards}),
        "redemptions": len(redemptions),
        "redemption_states": sorted({r.state for r in redemptions}),
        "rankings": [(ppb.RankingKind.Name(r.kind), r.title, bool(r.publish_time.seconds)) for r in rankings],
        "credit_tiers": len(policy.tiers),
        "service_accounts": [b.display_name for b in banks],
        "accounts": len(accounts),
        "balance_mismatches": mismatched,
    }


def verify_ledger(stack: Stack, points_db: str) -> dict[str, object]:
    """`python -m services.points verify` on the seeded database."""
    done = subprocess.run(
        [sys.executable, "-m", "services.points", "verify"],
        env=stack.env(GOV_DATABASE_URL=points_db),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:]}


def main() -> int:
    data_dir, identity_db, blocks_db, tickets_db, points_db, notifications_db = sys.argv[1:7]
    report: dict[str, object] = {"monotonic_at_start": time.monotonic(), "runs": []}
    stack = Stack(Path(data_dir), base_env=STACK_ENV)
    try:
        stack.start_nats()
        envs = {
            "identity": {**IDENTITY_ENV, "GOV_DATABASE_URL": identity_db},
            "blocks": {"GOV_DATABASE_URL": blocks_db},
            "tickets": {"GOV_DATABASE_URL": tickets_db},
            "points": {"GOV_DATABASE_URL": points_db},
        }
        for service, env in envs.items():
            stack.run_command(service, "migrate", env)
        admin = {"ADMIN_LOGIN": ADMIN_LOGIN, "ADMIN_PASSWORD": ADMIN_PASSWORD}
        stack.run_command("identity", "create-admin", {**envs["identity"], **admin})
        for service, env in envs.items():
            stack.start_service(service, env)
        # Notifications reads audiences with its own service account, made once identity serves.
        notifications = {"GOV_DATABASE_URL": notifications_db}
        stack.run_command("notifications", "migrate", notifications)
        notifications |= stack.create_service_account("notifications", ADMIN_LOGIN, ADMIN_PASSWORD)
        stack.start_service("notifications", notifications)
        seed_env = stack.env(
            GOV_IDENTITY_ADDR=stack.addrs["identity"],
            GOV_BLOCKS_ADDR=stack.addrs["blocks"],
            GOV_TICKETS_ADDR=stack.addrs["tickets"],
            GOV_POINTS_ADDR=stack.addrs["points"],
            GOV_NOTIFICATIONS_ADDR=stack.addrs["notifications"],
            DEMO_STAFF_PASSWORD=STAFF_PASSWORD,
            OPEN311_API_KEY_FILE=str(Path(data_dir) / "open311-api-key"),
            BANK_API_KEY_FILE=str(Path(data_dir) / "bank-api-key"),
            **admin,
        )
        runs: list[dict[str, object]] = []
        report["runs"] = runs
        for _ in range(2):
            for module in SEEDERS:
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
        report["points"] = asyncio.run(points_demo(stack, points_db))
        report["points_verify"] = verify_ledger(stack, points_db)
    except (RuntimeError, TimeoutError) as exc:
        report["error"] = str(exc)
        report["logs"] = {p.name: p.tail() for p in stack.procs}
    finally:
        stack.stop()
    print(json.dumps(report, ensure_ascii=False))
    return 0 if "error" not in report else 1


if __name__ == "__main__":
    raise SystemExit(main())
