"""The ledger in the database: an account's state loaded under its row lock, the pure rules
applied to it, and the entries, allocations, lots, debts and balances written back together.

Every writer of an account locks its row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite
has one writer at a time), so the rules always see the state the previous writer committed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from google.protobuf.message import Message
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gov.points.v1 import events_pb2
from govkit import outbox
from services.points import convert, domain
from services.points.ledger import PENALTIES, AccountBook, Allocation, Balances, Kind, Phase, Settlement
from services.points.ledger import Debt as BookDebt
from services.points.ledger import Lot as BookLot
from services.points.models import Account, Debt, Entry, Lot, platform
from services.points.models import Allocation as AllocationRow

# What each entry announces: points.v1.entry.<verb>.
_VERBS = {Kind.REVERSAL: "reversed", Kind.EXPIRY: "expired"}


async def emit(session: AsyncSession, actor: str, event_type: str, payload: Message, resource: str) -> None:
    await outbox.emit(session, platform.outbox, actor, event_type, payload, resource)


async def ensure_account(session: AsyncSession, account_id: str, node: str, now: dt.datetime) -> None:
    """Open the account on its first entry; a concurrent opener's row wins, nothing fails."""
    values = {
        "id": account_id,
        "owner": domain.owner_of(account_id),
        "node": node,
        "credits_posted": 0,
        "debits_posted": 0,
        "credits_pending": 0,
        "debits_pending": 0,
        "outstanding": 0,
        "create_time": now,
        "update_time": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(dialect.insert(Account).values(**values).on_conflict_do_nothing())


class Loaded:
    """An account row and its book, with what was loaded, to write back only what changed."""

    def __init__(self, row: Account, book: AccountBook) -> None:
        self.row = row
        self.book = book
        self.lots_before = {lot.entry_id: (lot.remaining, lot.expired) for lot in book.lots}
        self.debts_before = {d.entry_id: d.remaining for d in book.debts}


async def load(
    session: AsyncSession, account_id: str, *, lots: Iterable[str] = (), debts: Iterable[str] = ()
) -> Loaded | None:
    """Lock the account and load its open lots and debts (and the named ones, open or not)."""
    row = await session.scalar(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # what the previous lock holder committed
    )
    if row is None:
        return None
    lot_rows = (
        await session.scalars(
            select(Lot).where(
                Lot.account_id == account_id, (Lot.remaining > 0) | Lot.entry_id.in_(list(lots))
            )
        )
    ).all()
    debt_rows = (
        await session.scalars(
            select(Debt).where(
                Debt.account_id == account_id, (Debt.remaining > 0) | Debt.entry_id.in_(list(debts))
            )
        )
    ).all()
    book = AccountBook(
        account_id,
        Balances(
            row.credits_posted, row.debits_posted, row.credits_pending, row.debits_pending, row.outstanding
        ),
        [
            BookLot(r.entry_id, r.seq, r.earned_at, r.expires_at, r.amount, r.remaining, r.expired)
            for r in lot_rows
        ],
        [BookDebt(r.entry_id, r.seq, r.amount, r.remaining) for r in debt_rows],
    )
    return Loaded(row, book)


async def save(session: AsyncSession, loaded: Loaded, now: dt.datetime) -> None:
    """Write the book's balances, new and changed lots and debts."""
    b = loaded.book.balances
    row = loaded.row
    row.credits_posted, row.debits_posted = b.credits_posted, b.debits_posted
    row.credits_pending, row.debits_pending, row.outstanding = (
        b.credits_pending,
        b.debits_pending,
        b.outstanding,
    )
    row.update_time = now
    for lot in loaded.book.lots:
        before = loaded.lots_before.get(lot.entry_id)
        if before is None:
            session.add(
                Lot(
                    entry_id=lot.entry_id,
                    account_id=loaded.book.account,
                    seq=lot.seq,
                    earned_at=lot.earned_at,
                    expires_at=lot.expires_at,
                    amount=lot.amount,
                    remaining=lot.remaining,
                    expired=lot.expired,
                    warned=False,
                )
            )
        elif before != (lot.remaining, lot.expired):
            await session.execute(
                update(Lot)
                .where(Lot.entry_id == lot.entry_id)
                .values(remaining=lot.remaining, expired=lot.expired)
            )
    for debt in loaded.book.debts:
        before_debt = loaded.debts_before.get(debt.entry_id)
        if before_debt is None:
            session.add(
                Debt(
                    entry_id=debt.entry_id,
                    account_id=loaded.book.account,
                    seq=debt.seq,
                    amount=debt.amount,
                    remaining=debt.remaining,
                )
            )
        elif before_debt != debt.remaining:
            await session.execute(
                update(Debt).where(Debt.entry_id == debt.entry_id).values(remaining=debt.remaining)
            )
    await session.flush()


async def add_entry(
    session: AsyncSession,
    *,
    id: str,
    kind: Kind,
    phase: Phase,
    debit: str,
    credit: str,
    account: str,
    amount: int,
    actor: str,
    now: dt.datetime,
    pending_id: str | None = None,
    reverses: str | None = None,
    settles: str | None = None,
    outstanding_delta: int = 0,
    award_id: str | None = None,
    redemption_id: str | None = None,
    note: str = "",
    expire_time: dt.datetime | None = None,
    timeout_time: dt.datetime | None = None,
) -> Entry:
    row = Entry(
        id=id,
        kind=kind.value,
        phase=phase.value,
        debit_account=debit,
        credit_account=credit,
        account_id=account,
        amount=amount,
        pending_id=pending_id,
        reverses=reverses,
        settles=settles,
        outstanding_delta=outstanding_delta,
        award_id=award_id,
        redemption_id=redemption_id,
        actor=actor,
        note=note,
        expire_time=expire_time,
        timeout_time=timeout_time,
        create_time=now,
    )
    session.add(row)
    await session.flush()  # the seq, and a duplicate id fails here
    return row


async def allocate(session: AsyncSession, entry_id: str, allocations: Sequence[Allocation]) -> None:
    merged: dict[str, int] = defaultdict(int)
    for lot, part in allocations:
        merged[lot] += part
    rows = [{"entry_id": entry_id, "lot_id": lot, "amount": part} for lot, part in merged.items() if part]
    if rows:
        await session.execute(insert(AllocationRow), rows)


async def allocations_of(session: AsyncSession, entry_ids: Sequence[str]) -> dict[str, list[Allocation]]:
    found: dict[str, list[Allocation]] = defaultdict(list)
    if entry_ids:
        for r in await session.scalars(
            select(AllocationRow).where(AllocationRow.entry_id.in_(list(entry_ids)))
        ):
            found[r.entry_id].append((r.lot_id, r.amount))
    return found


async def announce(session: AsyncSession, entry: Entry, expired_entries: Sequence[str] = ()) -> None:
    verb = "voided" if entry.phase == Phase.VOID else _VERBS.get(Kind(entry.kind), "posted")
    facts = convert.entry_facts(entry, list(expired_entries))
    facts.owner = domain.owner_of(entry.account_id)
    facts.time.FromDatetime(entry.create_time)
    await emit(
        session,
        entry.actor,
        f"points.v1.entry.{verb}",
        events_pb2.EntryRecorded(entry=facts),
        f"entries/{entry.id}",
    )


async def settle(
    session: AsyncSession,
    loaded: Loaded,
    settlements: Sequence[Settlement],
    credit_entry: Entry,
    actor: str,
    now: dt.datetime,
) -> None:
    """Write the settlement entries an award's posting produced (one per debt paid)."""
    for i, s in enumerate(settlements, start=1):
        row = await add_entry(
            session,
            id=f"{credit_entry.id.removesuffix(':post')}:s{i}",
            kind=Kind.SETTLEMENT,
            phase=Phase.POSTED,
            debit=loaded.book.account,
            credit=PENALTIES,
            account=loaded.book.account,
            amount=s.amount,
            actor=actor,
            now=now,
            settles=s.debt_id,
            outstanding_delta=-s.amount,
            award_id=credit_entry.award_id,
        )
        await allocate(session, row.id, s.allocations)
        await announce(session, row)
