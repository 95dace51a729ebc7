"""Tickets' tables.

A ticket row also carries what the cockpit aggregates (time buckets, on-time and same-day
flags), computed when the ticket changes, so statistics are one scan with no joins.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govkit import treemoves
from govkit.db import SEQ, UtcDateTime, new_metadata
from govkit.tables import PlatformTables


class Base(DeclarativeBase):
    metadata = new_metadata()


platform = PlatformTables(Base.metadata)
# The region tree's node moves applied here (services.tickets.node_moves), in blocks' order.
MOVES = treemoves.MoveLog(treemoves.moves_table(Base.metadata))


class Unit(Base):
    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(30))
    node: Mapped[str] = mapped_column(String(300), index=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class UnitMember(Base):
    __tablename__ = "unit_members"

    unit_code: Mapped[str] = mapped_column(
        String(40), ForeignKey("units.code", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Category(Base):
    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    default_unit: Mapped[str] = mapped_column(String(40))  # unit code or ""
    default_center: Mapped[str] = mapped_column(String(30))  # unit kind or ""
    priority: Mapped[str] = mapped_column(String(10))
    matter_class: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    attributes: Mapped[str] = mapped_column(Text)  # JSON list of definitions
    acknowledge_seconds: Mapped[int] = mapped_column(Integer)
    resolve_seconds: Mapped[int] = mapped_column(Integer)
    sla_clock: Mapped[str] = mapped_column(String(15))
    escalate_on_acknowledge_breach: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Anyone may read its tickets' public fields (Open311 without a key). Private unless set.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(14))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    media: Mapped[str] = mapped_column(Text)  # JSON list of URIs
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    household_id: Mapped[str | None] = mapped_column(String(36))
    address: Mapped[str] = mapped_column(String(300))
    node: Mapped[str] = mapped_column(String(300))
    street: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(40))
    community: Mapped[str] = mapped_column(String(200))  # "" when reported at street level
    reporter: Mapped[str] = mapped_column(String(60))
    contact_name: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str] = mapped_column(String(20))
    attributes: Mapped[str] = mapped_column(Text)  # JSON {code: [values]}
    priority: Mapped[str] = mapped_column(String(10))
    matter_class: Mapped[str] = mapped_column(String(20))
    suggested_unit: Mapped[str] = mapped_column(String(40))
    lead_unit: Mapped[str] = mapped_column(String(40))
    escalated: Mapped[bool] = mapped_column(Boolean)
    acknowledge_deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    resolve_deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    acknowledge_overdue: Mapped[bool] = mapped_column(Boolean)
    resolve_overdue: Mapped[bool] = mapped_column(Boolean)
    acknowledge_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    resolve_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    close_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    resolution: Mapped[str] = mapped_column(Text)
    resolution_media: Mapped[str] = mapped_column(Text)  # JSON list
    mediation_outcome: Mapped[str] = mapped_column(String(12))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str] = mapped_column(Text)
    rating_by: Mapped[str] = mapped_column(String(60))
    rating_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    merged_into: Mapped[str] = mapped_column(String(36))
    reject_reason: Mapped[str] = mapped_column(Text)
    possible_duplicates: Mapped[str] = mapped_column(Text)  # JSON list of ids
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # For the cockpit: log-scale buckets of report->acknowledge and report->resolve, and flags.
    acknowledge_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    resolve_bucket: Mapped[int | None] = mapped_column(SmallInteger)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    same_day: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_tickets_create", "create_time", "id"),
        Index("ix_tickets_node_create", "node", "create_time"),
        # Statistics below district level: equality on the node's level, then the period.
        Index("ix_tickets_street_create", "street", "create_time"),
        Index("ix_tickets_community_create", "community", "create_time"),
        Index("ix_tickets_district_create", "district", "create_time"),
        Index("ix_tickets_lead_unit_create", "lead_unit", "create_time"),
        Index("ix_tickets_reporter_create", "reporter", "create_time"),
        Index("ix_tickets_category_create", "category", "create_time"),
        # The sweeper's two questions: open tickets past either deadline.
        Index("ix_tickets_state_ack_deadline", "state", "acknowledge_deadline"),
        Index("ix_tickets_state_resolve_deadline", "state", "resolve_deadline"),
    )


class TicketUnit(Base):
    """Units a ticket is dispatched to ("the block whistles"), and how each answered."""

    __tablename__ = "ticket_units"

    ticket_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    unit: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(14))
    reason: Mapped[str] = mapped_column(Text)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class TimelineEntry(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "timeline_entries"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(36), ForeignKey("tickets.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(60))
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text)  # JSON object of strings


class Breach(Base):
    """One row per breached deadline: the key that makes the overdue event happen once."""

    __tablename__ = "breaches"

    ticket_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CalendarDay(Base):
    __tablename__ = "calendar_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(40))


class CalendarYear(Base):
    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class MonthStats(Base):
    """A district's tickets per reporting month (China Standard Time), category and lead unit.

    Kept in step with every ticket change (the change's difference is added in the same
    transaction), so a district's figures for whole months are a sum over a few thousand rows
    however many tickets there are.
    """

    __tablename__ = "month_stats"

    district: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    lead_unit: Mapped[str] = mapped_column(String(40), primary_key=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    submitted: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    in_progress: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    on_time: Mapped[int] = mapped_column(Integer, default=0)
    same_day: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    mediated: Mapped[int] = mapped_column(Integer, default=0)
    settled: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)


class MonthBuckets(Base):
    """Histograms of time to acknowledge / resolve, with the keys of MonthStats."""

    __tablename__ = "month_buckets"

    district: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    lead_unit: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # acknowledge | resolve
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class DistrictMonthBuckets(Base):
    """The same histograms for the whole district and month, for the cockpit's commonest
    question (no category or unit): a few hundred rows a month instead of tens of thousands."""

    __tablename__ = "district_month_buckets"

    district: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
