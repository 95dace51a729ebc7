"""`python -m services.points verify`: prove that every account's balances are the sums of its
entries, its lots and debts agree with them, and nothing is negative.

Reads account by account, each in one consistent snapshot (a repeatable-read transaction on
PostgreSQL; SQLite's read transaction is a snapshot already), so it runs beside live traffic.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from govkit.db import Database
from services.points.ledger import Entry as BookEntry
from services.points.ledger import Kind, Phase, totals
from services.points.models import Account, Allocation, Debt, Entry, Lot

BATCH = 500


async def verify(db: Database) -> tuple[int, list[str]]:
    """(accounts checked, problems found)."""
    problems: list[str] = []
    checked = 0
    after = ""
    while True:
        async with db.sessions() as session:
            ids = list(
                await session.scalars(
                    select(Account.id).where(Account.id > after).order_by(Account.id).limit(BATCH)
                )
            )
        for account_id in ids:
            problems += await check_account(db, account_id)
            checked += 1
        if len(ids) < BATCH:
            return checked, problems
        after = ids[-1]


async def check_account(db: Database, account_id: str) -> list[str]:
    async with db.snapshot() as session:
        row = await session.get(Account, account_id)
        assert row is not None
        entries = list(await session.scalars(select(Entry).where(Entry.account_id == account_id)))
        lots = list(await session.scalars(select(Lot).where(Lot.account_id == account_id)))
        debts = list(await session.scalars(select(Debt).where(Debt.account_id == account_id)))
        lot_ids = [lot.entry_id for lot in lots]
        allocated: dict[str, int] = defaultdict(int)
        if lot_ids:
            for a in await session.scalars(select(Allocation).where(Allocation.lot_id.in_(lot_ids))):
                allocated[a.lot_id] += a.amount
    problems = []
    sums = totals(
        (
            BookEntry(
                e.id,
                Kind(e.kind),
                Phase(e.phase),
                e.debit_account,
                e.credit_account,
                e.amount,
                e.pending_id or "",
                e.outstanding_delta,
            )
            for e in entries
        ),
        account_id,
    )
    stored = (row.credits_posted, row.debits_posted, row.credits_pending, row.debits_pending, row.outstanding)
    if stored != sums.as_tuple():
        problems.append(f"{account_id}: row {stored} != sums of entries {sums.as_tuple()}")
    if sums.available < 0:
        problems.append(f"{account_id}: redeemable balance {sums.available} < 0")
    if sum(lot.remaining for lot in lots) != sums.balance:
        problems.append(
            f"{account_id}: lots hold {sum(lot.remaining for lot in lots)}, balance is {sums.balance}"
        )
    for lot in lots:
        if lot.remaining != lot.amount - allocated[lot.entry_id]:
            problems.append(
                f"{account_id}: lot {lot.entry_id} holds {lot.remaining}, "
                f"entries leave {lot.amount - allocated[lot.entry_id]}"
            )
    if sum(d.remaining for d in debts) != sums.outstanding:
        problems.append(
            f"{account_id}: debts hold {sum(d.remaining for d in debts)}, outstanding is {sums.outstanding}"
        )
    return problems
