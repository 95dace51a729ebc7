"""The ledger's rules, as plain Python over one account's state.

An account's state is its balances (sums of its entries), its *lots* (the unspent rest of each
earning entry, oldest first) and its *debts* (the unpaid rest of each penalty). Every operation
here checks its rule, changes that state and returns what it did, so the database layer writes
exactly that and the in-memory `Ledger` (used by the property tests) does the same.

The rules:
- No overdraft: a debit never takes more than `available` (balance minus what pending
  redemptions hold); a reservation that would is refused.
- Spending takes the oldest points first (earning time, then entry order): redemptions,
  penalties, settlements and expiries all consume lots in that order.
- Expiry takes, from the lots past their expiry time, what is unspent and not held by a pending
  redemption; each expiry names the earning entries it expires.
- A penalty takes at most `available`; the rest becomes a debt (outstanding penalty) that the
  next awards settle first, oldest debt first, each settlement its own entry.
- A reversal gives back exactly what the original took (to the lots it took from) or takes back
  what is left of what it gave. Reversing an award never takes points that already expired and
  never creates points: what of the award was already spent becomes an outstanding penalty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from govkit.errors import FailedPrecondition

SYSTEM_PREFIX = "sys-"
# System accounts are the other side of every entry. Their balances are never kept in a row
# (every award would update the same row); they are the sums of their entries by definition.
ISSUANCE = "sys-issuance"  # debited by every award
PENALTIES = "sys-penalties"  # credited by penalties and settlements
EXPIRED = "sys-expired"  # credited by expiries
REDEEMED = "sys-redeemed"  # credited by redemptions


class Kind(StrEnum):
    AWARD = "award"
    PENALTY = "penalty"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"


class Phase(StrEnum):
    POSTED = "posted"  # single-phase
    PENDING = "pending"
    POST = "post"
    VOID = "void"


def is_system(account: str) -> bool:
    return account.startswith(SYSTEM_PREFIX)


@dataclass
class Balances:
    credits_posted: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    debits_pending: int = 0
    outstanding: int = 0

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.balance - self.debits_pending

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (
            self.credits_posted,
            self.debits_posted,
            self.credits_pending,
            self.debits_pending,
            self.outstanding,
        )


@dataclass
class Lot:
    """The unspent rest of one earning entry."""

    entry_id: str
    seq: int  # ledger order of the earning entry: breaks ties between equal earning times
    earned_at: dt.datetime
    expires_at: dt.datetime | None
    amount: int
    remaining: int
    expired: int = 0  # taken by expiry entries

    @property
    def order(self) -> tuple[dt.datetime, int]:
        return (self.earned_at, self.seq)


@dataclass
class Debt:
    """The unpaid rest of one penalty (or of a reversed award already spent)."""

    entry_id: str
    seq: int
    amount: int
    remaining: int


# (lot entry id, points): positive consumes the lot, negative gives points back to it.
Allocation = tuple[str, int]


@dataclass
class Settlement:
    debt_id: str
    amount: int
    allocations: list[Allocation]


@dataclass
class AccountBook:
    """One account's state, loaded under the account's lock and changed by one operation."""

    account: str
    balances: Balances = field(default_factory=Balances)
    lots: list[Lot] = field(default_factory=list)
    debts: list[Debt] = field(default_factory=list)

    # ---------------------------------------------------------------- helpers

    def lot(self, entry_id: str) -> Lot | None:
        return next((lot for lot in self.lots if lot.entry_id == entry_id), None)

    def debt(self, entry_id: str) -> Debt | None:
        return next((d for d in self.debts if d.entry_id == entry_id), None)

    def _take(self, amount: int, lots: Iterable[Lot]) -> list[Allocation]:
        """Consume `amount` from `lots`, oldest first."""
        taken: list[Allocation] = []
        left = amount
        for lot in sorted((lot for lot in lots if lot.remaining > 0), key=lambda lot: lot.order):
            if left == 0:
                break
            part = min(lot.remaining, left)
            lot.remaining -= part
            left -= part
            taken.append((lot.entry_id, part))
        if left:
            # Unreachable while sum(lots) == balance; a guard against a corrupted state.
            raise RuntimeError(f"account {self.account}: lots hold {amount - left} of {amount} points")
        return taken

    def _give_back(self, allocations: Sequence[Allocation]) -> list[Allocation]:
        restored: list[Allocation] = []
        for entry_id, part in allocations:
            lot = self.lot(entry_id)
            if lot is None:
                raise RuntimeError(f"account {self.account}: no lot {entry_id} to give points back to")
            lot.remaining += part
            restored.append((entry_id, -part))
        return restored

    # ---------------------------------------------------------------- credits

    def hold_credit(self, amount: int) -> None:
        """An award waiting for approval: pending, not in the balance."""
        self.balances.credits_pending += amount

    def release_credit(self, amount: int) -> None:
        """The held award was rejected or timed out (void)."""
        self.balances.credits_pending -= amount

    def credit(
        self,
        entry_id: str,
        seq: int,
        amount: int,
        earned_at: dt.datetime,
        expires_at: dt.datetime | None,
        *,
        was_held: bool = False,
    ) -> list[Settlement]:
        """Post earned points: a new lot, then settle outstanding penalties first, oldest first."""
        if was_held:
            self.balances.credits_pending -= amount
        self.balances.credits_posted += amount
        self.lots.append(Lot(entry_id, seq, earned_at, expires_at, amount, amount))
        settlements: list[Settlement] = []
        budget = amount
        for debt in sorted((d for d in self.debts if d.remaining > 0), key=lambda d: d.seq):
            if budget == 0:
                break
            pay = min(debt.remaining, budget, self.balances.available)
            if pay <= 0:
                break
            debt.remaining -= pay
            budget -= pay
            self.balances.debits_posted += pay
            self.balances.outstanding -= pay
            settlements.append(Settlement(debt.entry_id, pay, self._take(pay, self.lots)))
        return settlements

    # ---------------------------------------------------------------- debits

    def reserve(self, amount: int) -> None:
        """Hold points for a redemption (pending debit); refused beyond the redeemable balance."""
        if amount > self.balances.available:
            raise FailedPrecondition(
                f"not enough points: {self.balances.available} redeemable, {amount} needed"
            )
        self.balances.debits_pending += amount

    def unreserve(self, amount: int) -> None:
        """The redemption was cancelled or timed out (void)."""
        self.balances.debits_pending -= amount

    def post_reserved(self, amount: int) -> list[Allocation]:
        """The redemption was fulfilled: the held points are spent, oldest first."""
        self.balances.debits_pending -= amount
        self.balances.debits_posted += amount
        return self._take(amount, self.lots)

    def penalize(self, entry_id: str, seq: int, amount: int) -> tuple[int, int, list[Allocation]]:
        """(applied, outstanding, allocations): never below zero; the rest becomes a debt."""
        applied = max(0, min(amount, self.balances.available))
        deferred = amount - applied
        self.balances.debits_posted += applied
        allocations = self._take(applied, self.lots)
        if deferred:
            self.balances.outstanding += deferred
            self.debts.append(Debt(entry_id, seq, deferred, deferred))
        return applied, deferred, allocations

    def expire(self, now: dt.datetime) -> list[Allocation]:
        """Unspent points past their expiry, oldest first, except what pending redemptions hold."""
        due = [lot for lot in self.lots if lot.expires_at is not None and lot.expires_at <= now]
        amount = min(sum(lot.remaining for lot in due), max(0, self.balances.available))
        if amount <= 0:
            return []
        allocations = self._take(amount, due)
        for entry_id, part in allocations:
            lot = self.lot(entry_id)
            assert lot is not None
            lot.expired += part
        self.balances.debits_posted += amount
        return allocations

    # ---------------------------------------------------------------- reversals

    def reverse_credit(
        self, entry_id: str, amount: int, reversal_id: str, seq: int
    ) -> tuple[int, int, list[Allocation]]:
        """Take back the award `entry_id`: (taken, outstanding, allocations).

        Takes what is left of its lot (as far as it is not held by a pending redemption); what
        of it was already spent, or is held, becomes an outstanding penalty; what expired is gone
        and is neither taken nor owed.
        """
        lot = self.lot(entry_id)
        if lot is None:
            raise RuntimeError(f"account {self.account}: no lot for {entry_id}")
        taken = max(0, min(lot.remaining, self.balances.available))
        lot.remaining -= taken
        allocations: list[Allocation] = [(entry_id, taken)] if taken else []
        self.balances.debits_posted += taken
        owed = amount - lot.expired - taken
        if owed > 0:
            self.balances.outstanding += owed
            self.debts.append(Debt(reversal_id, seq, owed, owed))
        return taken, max(owed, 0), allocations

    def reverse_debit(
        self, allocations: Sequence[Allocation], settlements: Sequence[tuple[str, Sequence[Allocation]]] = ()
    ) -> tuple[int, list[Allocation]]:
        """Give back what a penalty or redemption took: (credited, allocations).

        For a penalty, `settlements` are the (settlement entry id, allocations) that paid its debt:
        those points come back too, and what is still unpaid of the debt is cancelled.
        """
        restored = self._give_back(allocations)
        for _, paid in settlements:
            restored += self._give_back(paid)
        credited = -sum(part for _, part in restored)
        self.balances.credits_posted += credited
        return credited, restored

    def cancel_debt(self, entry_id: str) -> int:
        """Cancel what is unpaid of a penalty's debt (the penalty was reversed); returns it."""
        debt = self.debt(entry_id)
        if debt is None or debt.remaining == 0:
            return 0
        cancelled = debt.remaining
        debt.remaining = 0
        self.balances.outstanding -= cancelled
        return cancelled

    # ---------------------------------------------------------------- invariants

    def check(self) -> list[str]:
        """What is wrong with this state ([] when nothing)."""
        problems = []
        b = self.balances
        if b.available < 0:
            problems.append(f"{self.account}: redeemable balance {b.available} < 0")
        if b.credits_pending < 0 or b.debits_pending < 0 or b.outstanding < 0:
            problems.append(f"{self.account}: negative pending or outstanding {b.as_tuple()}")
        lots = sum(lot.remaining for lot in self.lots)
        if lots != b.balance:
            problems.append(f"{self.account}: lots hold {lots}, balance is {b.balance}")
        if any(lot.remaining < 0 or lot.remaining > lot.amount for lot in self.lots):
            problems.append(f"{self.account}: a lot outside 0..its amount")
        debts = sum(d.remaining for d in self.debts)
        if debts != b.outstanding:
            problems.append(f"{self.account}: debts hold {debts}, outstanding is {b.outstanding}")
        return problems


# ---------------------------------------------------------------- entries and their sums


@dataclass(frozen=True)
class Entry:
    """An immutable ledger entry, as far as the sums need it."""

    id: str
    kind: Kind
    phase: Phase
    debit: str
    credit: str
    amount: int
    pending_id: str = ""
    outstanding_delta: int = 0


def party(entry: Entry) -> str:
    """The resident's or household's account of an entry (the other side is a system account)."""
    return entry.credit if is_system(entry.debit) else entry.debit


def totals(entries: Iterable[Entry], account: str) -> Balances:
    """An account's balances as the sums of its entries (what `verify` compares with the row)."""
    b = Balances()
    for e in entries:
        sign = {Phase.POSTED: 0, Phase.POST: 0, Phase.PENDING: 1, Phase.VOID: 2}[e.phase]
        for side in ("debit", "credit"):
            if getattr(e, side) != account:
                continue
            if sign == 0:
                setattr(b, f"{side}s_posted", getattr(b, f"{side}s_posted") + e.amount)
            if e.phase == Phase.POST or sign == 2:
                setattr(b, f"{side}s_pending", getattr(b, f"{side}s_pending") - e.amount)
            if sign == 1:
                setattr(b, f"{side}s_pending", getattr(b, f"{side}s_pending") + e.amount)
        if party(e) == account:
            b.outstanding += e.outstanding_delta
    return b
