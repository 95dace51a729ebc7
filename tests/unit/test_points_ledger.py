"""The ledger's rules on one account, and a randomized run checking that balances always equal the
sums of the entries, lots and debts agree with them, and nothing goes below zero."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import pytest

from govkit.errors import FailedPrecondition
from services.points.ledger import (
    EXPIRED,
    ISSUANCE,
    PENALTIES,
    REDEEMED,
    AccountBook,
    Allocation,
    Entry,
    Kind,
    Phase,
    totals,
)

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def test_spending_takes_the_oldest_points_first() -> None:
    book = AccountBook("u-1")
    book.credit("a1", 1, 10, day(0), None)
    book.credit("a2", 2, 10, day(1), None)
    book.reserve(15)
    assert book.post_reserved(15) == [("a1", 10), ("a2", 5)]
    assert book.check() == []


def test_equal_earning_times_break_ties_by_ledger_order() -> None:
    book = AccountBook("u-1")
    book.credit("b", 2, 5, day(0), None)
    book.credit("a", 1, 5, day(0), None)
    book.reserve(5)
    assert book.post_reserved(5) == [("a", 5)]


def test_expiry_takes_only_expired_lots_oldest_first_and_names_them() -> None:
    book = AccountBook("u-1")
    book.credit("old", 1, 10, day(0), day(30))
    book.credit("older-expiring-later", 2, 10, day(1), day(400))
    book.credit("new", 3, 10, day(2), day(31))
    assert book.expire(day(29)) == []
    assert book.expire(day(31)) == [("old", 10), ("new", 10)]
    assert book.balances.balance == 10
    assert book.expire(day(31)) == []  # nothing twice
    assert book.check() == []


def test_expiry_spares_points_held_by_a_pending_redemption() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), day(30))
    book.reserve(6)
    assert book.expire(day(40)) == [("a", 4)]
    # The held 6 stay; fulfilment spends them from the expired lot.
    assert book.post_reserved(6) == [("a", 6)]
    assert book.balances.balance == 0 and book.check() == []


def test_expiry_after_a_cancelled_redemption_takes_the_rest() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), day(30))
    book.reserve(6)
    book.expire(day(40))
    book.unreserve(6)
    assert book.expire(day(41)) == [("a", 6)]
    assert book.balances.balance == 0 and book.check() == []


def test_no_overdraft() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), None)
    book.reserve(8)
    with pytest.raises(FailedPrecondition):
        book.reserve(3)
    assert book.balances.available == 2


def test_a_penalty_never_goes_below_zero_and_the_rest_is_outstanding() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), None)
    applied, outstanding, allocations = book.penalize("p", 2, 25)
    assert (applied, outstanding, allocations) == (10, 15, [("a", 10)])
    assert book.balances.balance == 0 and book.balances.outstanding == 15
    assert book.check() == []


def test_a_penalty_spares_points_held_for_a_redemption() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), None)
    book.reserve(7)
    applied, outstanding, _ = book.penalize("p", 2, 5)
    assert (applied, outstanding) == (3, 2)
    assert book.balances.available == 0 and book.check() == []


def test_later_awards_settle_outstanding_penalties_first_oldest_first() -> None:
    book = AccountBook("u-1")
    book.penalize("p1", 1, 4)
    book.penalize("p2", 2, 6)
    settlements = book.credit("a1", 3, 7, day(1), None)
    assert [(s.debt_id, s.amount, s.allocations) for s in settlements] == [
        ("p1", 4, [("a1", 4)]),
        ("p2", 3, [("a1", 3)]),
    ]
    assert book.balances.balance == 0 and book.balances.outstanding == 3
    settlements = book.credit("a2", 4, 10, day(2), None)
    assert [(s.debt_id, s.amount) for s in settlements] == [("p2", 3)]
    assert book.balances.balance == 7 and book.balances.outstanding == 0
    assert book.check() == []


def test_reversing_an_expired_award_creates_no_points_and_owes_nothing() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), day(30))
    book.credit("b", 2, 5, day(1), None)
    book.expire(day(31))
    taken, owed, allocations = book.reverse_credit("a", 10, "r", 3)
    assert (taken, owed, allocations) == (0, 0, [])
    assert book.balances.balance == 5 and book.balances.outstanding == 0
    assert book.check() == []


def test_reversing_a_spent_award_leaves_what_was_spent_outstanding() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), None)
    book.reserve(4)
    book.post_reserved(4)
    taken, owed, allocations = book.reverse_credit("a", 10, "r", 2)
    assert (taken, owed, allocations) == (6, 4, [("a", 6)])
    assert book.balances.balance == 0 and book.balances.outstanding == 4
    assert book.check() == []


def test_reversing_a_partly_expired_and_partly_spent_award() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), day(30))
    book.reserve(3)
    book.post_reserved(3)
    book.expire(day(31))  # 7 expire
    taken, owed, _ = book.reverse_credit("a", 10, "r", 2)
    assert (taken, owed) == (0, 3)
    assert book.check() == []


def test_reversing_a_penalty_gives_back_what_it_took_and_what_settled_it_and_cancels_the_rest() -> None:
    book = AccountBook("u-1")
    book.credit("a", 1, 10, day(0), None)
    _, _, taken = book.penalize("p", 2, 16)  # 10 applied, 6 outstanding
    settlements = book.credit("b", 3, 4, day(1), None)  # settles 4 of the 6
    credited, restored = book.reverse_debit(
        taken, [(f"s{i}", s.allocations) for i, s in enumerate(settlements)]
    )
    cancelled = book.cancel_debt("p")
    assert (credited, cancelled) == (14, 2)
    assert sorted(restored) == [("a", -10), ("b", -4)]
    assert book.balances.balance == 14 and book.balances.outstanding == 0
    assert book.check() == []


def test_totals_count_each_phase() -> None:
    entries = [
        Entry("a", Kind.AWARD, Phase.POSTED, ISSUANCE, "u-1", 10),
        Entry("h", Kind.AWARD, Phase.PENDING, ISSUANCE, "u-1", 5),
        Entry("h:post", Kind.AWARD, Phase.POST, ISSUANCE, "u-1", 5, pending_id="h"),
        Entry("r", Kind.REDEMPTION, Phase.PENDING, "u-1", REDEEMED, 3),
        Entry("r2", Kind.REDEMPTION, Phase.PENDING, "u-1", REDEEMED, 2),
        Entry("r2:void", Kind.REDEMPTION, Phase.VOID, "u-1", REDEEMED, 2, pending_id="r2"),
        Entry("p", Kind.PENALTY, Phase.POSTED, "u-1", PENALTIES, 12, outstanding_delta=4),
    ]
    b = totals(entries, "u-1")
    assert b.as_tuple() == (15, 12, 0, 3, 4)
    assert (b.balance, b.available) == (3, 0)


# ---------------------------------------------------------------- randomized run


@dataclass
class Model:
    """A whole ledger in memory driven by the rules, recording entries as the service does."""

    books: dict[str, AccountBook] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    allocations: dict[str, list[Allocation]] = field(default_factory=dict)
    lot_amounts: dict[str, int] = field(default_factory=dict)
    held_awards: dict[str, tuple[str, int, dt.datetime | None]] = field(default_factory=dict)
    reservations: dict[str, tuple[str, int]] = field(default_factory=dict)
    reversible: list[tuple[str, str, Kind]] = field(default_factory=list)  # (entry, account, kind)
    settlements_of: dict[str, list[str]] = field(default_factory=dict)  # debt -> settlement entries
    seq: int = 0

    def next(self) -> int:
        self.seq += 1
        return self.seq

    def record(self, entry: Entry, allocations: list[Allocation] | None = None) -> None:
        self.entries.append(entry)
        if allocations:
            self.allocations[entry.id] = allocations

    def award(self, account: str, amount: int, now: dt.datetime, validity: int | None, held: bool) -> None:
        eid = f"e{self.next()}"
        book = self.books.setdefault(account, AccountBook(account))
        expires = now + dt.timedelta(days=validity) if validity else None
        if held:
            book.hold_credit(amount)
            self.record(Entry(eid, Kind.AWARD, Phase.PENDING, ISSUANCE, account, amount))
            self.held_awards[eid] = (account, amount, expires)
            return
        self.record(Entry(eid, Kind.AWARD, Phase.POSTED, ISSUANCE, account, amount))
        self._posted_credit(book, eid, amount, now, expires, was_held=False)

    def _posted_credit(
        self,
        book: AccountBook,
        eid: str,
        amount: int,
        now: dt.datetime,
        expires: dt.datetime | None,
        *,
        was_held: bool,
    ) -> None:
        self.lot_amounts[eid] = amount
        for s in book.credit(eid, self.seq, amount, now, expires, was_held=was_held):
            sid = f"e{self.next()}"
            self.record(
                Entry(
                    sid,
                    Kind.SETTLEMENT,
                    Phase.POSTED,
                    book.account,
                    PENALTIES,
                    s.amount,
                    outstanding_delta=-s.amount,
                ),
                s.allocations,
            )
            self.settlements_of.setdefault(s.debt_id, []).append(sid)
        self.reversible.append((eid, book.account, Kind.AWARD))

    def decide(self, eid: str, approve: bool, now: dt.datetime) -> None:
        account, amount, expires = self.held_awards.pop(eid)
        book = self.books[account]
        if approve:
            self.record(
                Entry(f"{eid}:post", Kind.AWARD, Phase.POST, ISSUANCE, account, amount, pending_id=eid)
            )
            self._posted_credit(book, eid, amount, now, expires, was_held=True)
        else:
            book.release_credit(amount)
            self.record(
                Entry(f"{eid}:void", Kind.AWARD, Phase.VOID, ISSUANCE, account, amount, pending_id=eid)
            )

    def penalize(self, account: str, amount: int) -> None:
        eid = f"e{self.next()}"
        book = self.books.setdefault(account, AccountBook(account))
        applied, outstanding, allocations = book.penalize(eid, self.seq, amount)
        self.record(
            Entry(
                eid, Kind.PENALTY, Phase.POSTED, account, PENALTIES, applied, outstanding_delta=outstanding
            ),
            allocations,
        )
        self.reversible.append((eid, account, Kind.PENALTY))

    def reserve(self, account: str, amount: int) -> bool:
        book = self.books.setdefault(account, AccountBook(account))
        try:
            book.reserve(amount)
        except FailedPrecondition:
            return False
        eid = f"e{self.next()}"
        self.record(Entry(eid, Kind.REDEMPTION, Phase.PENDING, account, REDEEMED, amount))
        self.reservations[eid] = (account, amount)
        return True

    def finish(self, eid: str, fulfil: bool) -> None:
        account, amount = self.reservations.pop(eid)
        book = self.books[account]
        if fulfil:
            allocations = book.post_reserved(amount)
            self.record(
                Entry(f"{eid}:post", Kind.REDEMPTION, Phase.POST, account, REDEEMED, amount, pending_id=eid),
                allocations,
            )
            self.reversible.append((f"{eid}:post", account, Kind.REDEMPTION))
        else:
            book.unreserve(amount)
            self.record(
                Entry(f"{eid}:void", Kind.REDEMPTION, Phase.VOID, account, REDEEMED, amount, pending_id=eid)
            )

    def expire(self, now: dt.datetime) -> None:
        for book in self.books.values():
            allocations = book.expire(now)
            if allocations:
                amount = sum(p for _, p in allocations)
                self.record(
                    Entry(f"e{self.next()}", Kind.EXPIRY, Phase.POSTED, book.account, EXPIRED, amount),
                    allocations,
                )

    def reverse(self, index: int) -> None:
        eid, account, kind = self.reversible.pop(index)
        book = self.books[account]
        rid = f"e{self.next()}"
        if kind == Kind.AWARD:
            taken, owed, allocations = book.reverse_credit(eid, self.lot_amounts[eid], rid, self.seq)
            self.record(
                Entry(rid, Kind.REVERSAL, Phase.POSTED, account, ISSUANCE, taken, outstanding_delta=owed),
                allocations,
            )
            return
        settlements = [(s, self.allocations.get(s, [])) for s in self.settlements_of.get(eid, [])]
        credited, restored = book.reverse_debit(self.allocations.get(eid, []), settlements)
        cancelled = book.cancel_debt(eid)
        system = PENALTIES if kind == Kind.PENALTY else REDEEMED
        self.record(
            Entry(rid, Kind.REVERSAL, Phase.POSTED, system, account, credited, outstanding_delta=-cancelled),
            restored,
        )

    def check(self) -> None:
        consumed: dict[str, int] = {}
        for allocations in self.allocations.values():
            for lot, part in allocations:
                consumed[lot] = consumed.get(lot, 0) + part
        for account, book in self.books.items():
            assert book.check() == [], book.check()
            assert totals(self.entries, account).as_tuple() == book.balances.as_tuple()
            for lot in book.lots:
                assert lot.remaining == self.lot_amounts[lot.entry_id] - consumed.get(lot.entry_id, 0)


@pytest.mark.parametrize("seed", range(25))
def test_randomized_run_keeps_every_invariant(seed: int) -> None:
    rng = random.Random(seed)
    model = Model()
    accounts = ["u-1", "u-2", "u-3"]
    now = T0
    for _ in range(200):
        now += dt.timedelta(hours=rng.randrange(1, 96))
        op = rng.random()
        account = rng.choice(accounts)
        if op < 0.3:
            model.award(
                account, rng.randrange(1, 20), now, rng.choice([None, 30, 90]), held=rng.random() < 0.3
            )
        elif op < 0.4 and model.held_awards:
            model.decide(rng.choice(sorted(model.held_awards)), rng.random() < 0.7, now)
        elif op < 0.5:
            model.penalize(account, rng.randrange(1, 25))
        elif op < 0.65:
            model.reserve(account, rng.randrange(1, 15))
        elif op < 0.75 and model.reservations:
            model.finish(rng.choice(sorted(model.reservations)), rng.random() < 0.6)
        elif op < 0.85:
            model.expire(now)
        elif model.reversible:
            model.reverse(rng.randrange(len(model.reversible)))
        model.check()
