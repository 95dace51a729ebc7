"""Points' tables.

Entries are immutable: rows are inserted, never updated or deleted. Account rows keep the sums of
their entries (checked by `python -m services.points verify`), lots the unspent rest of each
earning entry, debts the unpaid rest of each penalty; all three change only in the transaction
that inserts the entry explaining the change, under the account row's lock.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govkit.db import SEQ, UtcDateTime, new_metadata
from govkit.tables import PlatformTables

ENTRY_ID = 80  # a request id (64) plus a suffix such as ":post" or ":s1"
PATH = 300


class Base(DeclarativeBase):
    metadata = new_metadata()


platform = PlatformTables(Base.metadata)


class Indicator(Base):
    __tablename__ = "indicators"
    __table_args__ = (UniqueConstraint("node", "code", name="uq_indicators_node_code"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH), index=True)
    code: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    evidence_required: Mapped[bool] = mapped_column(Boolean)
    approval_required: Mapped[bool] = mapped_column(Boolean)
    cap_count: Mapped[int] = mapped_column(Integer)
    cap_period: Mapped[str] = mapped_column(String(10))  # "" without a cap
    validity_months: Mapped[int] = mapped_column(Integer)
    credit_household: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class IndicatorVersion(Base):
    """Every version of an indicator as it was (JSON of its fields): awards refer to one."""

    __tablename__ = "indicator_versions"

    indicator_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    snapshot: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class IndicatorSwitch(Base):
    """An inherited indicator switched off (or on again) for a node's area."""

    __tablename__ = "indicator_switches"

    indicator_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH), primary_key=True)
    disabled: Mapped[bool] = mapped_column(Boolean)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        # The database itself refuses an overdraft, whatever the code above it does.
        CheckConstraint("credits_posted - debits_posted - debits_pending >= 0", name="no_overdraft"),
        CheckConstraint(
            "credits_pending >= 0 AND debits_pending >= 0 AND outstanding >= 0", name="non_negative"
        ),
    )

    id: Mapped[str] = mapped_column(String(70), primary_key=True)  # u-{user id} / h-{household id}
    owner: Mapped[str] = mapped_column(String(80), unique=True)
    node: Mapped[str] = mapped_column(String(PATH), index=True)
    credits_posted: Mapped[int] = mapped_column(BigInteger)
    debits_posted: Mapped[int] = mapped_column(BigInteger)
    credits_pending: Mapped[int] = mapped_column(BigInteger)
    debits_pending: Mapped[int] = mapped_column(BigInteger)
    outstanding: Mapped[int] = mapped_column(BigInteger)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        Index("ix_entries_account_seq", "account_id", "seq"),
        Index("ix_entries_pending_timeout", "phase", "timeout_time"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(ENTRY_ID), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    phase: Mapped[str] = mapped_column(String(8))
    debit_account: Mapped[str] = mapped_column(String(70))
    credit_account: Mapped[str] = mapped_column(String(70))
    # The resident's or household's side (the other side is a system account).
    account_id: Mapped[str] = mapped_column(String(70))
    amount: Mapped[int] = mapped_column(BigInteger)
    # A pending entry is resolved (posted or voided) once, and an entry reversed once: unique.
    pending_id: Mapped[str | None] = mapped_column(String(ENTRY_ID), unique=True)
    reverses: Mapped[str | None] = mapped_column(String(ENTRY_ID), unique=True)
    settles: Mapped[str | None] = mapped_column(String(ENTRY_ID), index=True)
    outstanding_delta: Mapped[int] = mapped_column(BigInteger)
    award_id: Mapped[str | None] = mapped_column(String(64), index=True)
    redemption_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(Text)
    expire_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    timeout_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Allocation(Base):
    """Which earning entries (lots) an entry took points from (+) or gave them back to (-)."""

    __tablename__ = "allocations"

    entry_id: Mapped[str] = mapped_column(String(ENTRY_ID), primary_key=True)
    lot_id: Mapped[str] = mapped_column(String(ENTRY_ID), primary_key=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Lot(Base):
    """The unspent rest of one earning entry."""

    __tablename__ = "lots"
    __table_args__ = (
        Index("ix_lots_expiring", "expires_at", "remaining"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="within_amount"),
    )

    entry_id: Mapped[str] = mapped_column(String(ENTRY_ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(70), index=True)
    seq: Mapped[int] = mapped_column(SEQ)
    earned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expired: Mapped[int] = mapped_column(BigInteger)
    # The ahead-of-expiry notice went out (once per lot).
    warned: Mapped[bool] = mapped_column(Boolean)


class Debt(Base):
    """The unpaid rest of one penalty (or of a reversed award that was already spent)."""

    __tablename__ = "debts"
    __table_args__ = (CheckConstraint("remaining >= 0 AND remaining <= amount", name="within_amount"),)

    entry_id: Mapped[str] = mapped_column(String(ENTRY_ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(70), index=True)
    seq: Mapped[int] = mapped_column(SEQ)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)


class Award(Base):
    __tablename__ = "awards"
    __table_args__ = (Index("ix_awards_cap", "account_id", "indicator_id", "create_time"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(70))
    recipient: Mapped[str] = mapped_column(String(80), index=True)
    indicator_id: Mapped[str] = mapped_column(String(36))
    indicator_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(PATH), index=True)
    note: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON list of URIs
    state: Mapped[str] = mapped_column(String(20), index=True)
    recorded_by: Mapped[str] = mapped_column(String(80))
    decided_by: Mapped[str] = mapped_column(String(80))
    decision_note: Mapped[str] = mapped_column(Text)
    applied: Mapped[int] = mapped_column(Integer)
    outstanding: Mapped[int] = mapped_column(Integer)
    approval_deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decide_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    request_hash: Mapped[str] = mapped_column(String(64))
    appeal_state: Mapped[str] = mapped_column(String(10))  # "" without an appeal
    appeal_reason: Mapped[str] = mapped_column(Text)
    appeal_answer: Mapped[str] = mapped_column(Text)
    source_event: Mapped[str] = mapped_column(String(120))  # automatic earning: subject:event id
    household_award: Mapped[str] = mapped_column(String(64))  # the household's share, if any


class EarningRule(Base):
    __tablename__ = "earning_rules"
    __table_args__ = (Index("ix_earning_rules_trigger_node", "trigger", "node"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH))
    trigger: Mapped[str] = mapped_column(String(20))
    indicator_id: Mapped[str] = mapped_column(String(36))
    active: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CreditPolicy(Base):
    __tablename__ = "credit_policies"

    district: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_months: Mapped[int] = mapped_column(Integer)
    tiers: Mapped[str] = mapped_column(Text)  # JSON list, highest min_points first
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CreditConsent(Base):
    __tablename__ = "credit_consents"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bank: Mapped[str] = mapped_column(String(64), primary_key=True)  # service account id
    granted: Mapped[bool] = mapped_column(Boolean)
    grant_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    revoke_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class CreditQuery(Base):
    """Every tier query, answered or refused: the resident reads who looked, and when."""

    __tablename__ = "credit_queries"
    __table_args__ = (Index("ix_credit_queries_user_time", "user_id", "time"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(80))
    answered: Mapped[bool] = mapped_column(Boolean)
    refusal: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(64))
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ExchangePoint(Base):
    __tablename__ = "exchange_points"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(300))
    staff: Mapped[str] = mapped_column(Text)  # JSON list of user ids
    active: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    exchange_point_id: Mapped[str] = mapped_column(String(36), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    limit_per_person: Mapped[int] = mapped_column(Integer)
    limit_period: Mapped[str] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_limit", "account_id", "item_id", "create_time"),
        Index("ix_redemptions_point_state", "exchange_point_id", "state"),
        Index("ix_redemptions_timeout", "state", "expire_time"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(36))
    exchange_point_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(String(70))
    resident: Mapped[str] = mapped_column(String(80))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    expire_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    fulfilled_by: Mapped[str] = mapped_column(String(80))
    cancelled_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    request_hash: Mapped[str] = mapped_column(String(64))


class PartyMember(Base):
    __tablename__ = "party_members"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    community: Mapped[str] = mapped_column(String(PATH), index=True)
    work_unit: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Activity(Base):
    __tablename__ = "activities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    block: Mapped[str] = mapped_column(String(PATH), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    place: Mapped[str] = mapped_column(String(200))
    start_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    end_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    checked_in: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Attendance(Base):
    """One member at one activity: the primary key makes a second check-in impossible."""

    __tablename__ = "attendances"

    activity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    check_in_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    check_out_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    offline: Mapped[bool] = mapped_column(Boolean)
    checked_in_by: Mapped[str] = mapped_column(String(80))
    award_id: Mapped[str] = mapped_column(String(64))


class PublishedRanking(Base):
    """A published red or black list: a snapshot (masked names only), never recomputed."""

    __tablename__ = "rankings"
    __table_args__ = (Index("ix_rankings_node_time", "node", "publish_time"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH))
    snapshot: Mapped[str] = mapped_column(Text)  # JSON of the Ranking message
    published_by: Mapped[str] = mapped_column(String(80))
    publish_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    request_hash: Mapped[str] = mapped_column(String(64))
