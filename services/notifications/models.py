"""Notifications' tables.

Inbox items and deliveries are keyed for deduplication: one inbox item per (event, recipient), one
delivery per (event, recipient, channel), enforced by unique indexes, so an event handled again
(or a service killed mid-way) never tells anyone twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govkit.db import UtcDateTime, new_metadata
from govkit.tables import PlatformTables

_Seq = BigInteger().with_variant(Integer(), "sqlite")
PATH = 300
RECIPIENT = 320  # users/{id}, units/{code} or nodes/{path}


class Base(DeclarativeBase):
    metadata = new_metadata()


platform = PlatformTables(Base.metadata)


class InboxItem(Base):
    __tablename__ = "inbox_items"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient", name="uq_inbox_items_event_recipient"),
        Index("ix_inbox_items_recipient_seq", "recipient", "seq"),
        Index("ix_inbox_items_recipient_unread", "recipient", "read_time", "seq"),
        Index("ix_inbox_items_event_read", "event_id", "read_time", "recipient"),
    )

    # The stream position: increases with every item, what WatchInbox resumes from.
    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    recipient: Mapped[str] = mapped_column(String(RECIPIENT))  # users/{id}
    event_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500))
    resource: Mapped[str] = mapped_column(String(200))
    node: Mapped[str] = mapped_column(String(PATH))
    urgent: Mapped[bool] = mapped_column(Boolean)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    read_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Delivery(Base):
    """One message to one recipient on one outside channel (webhook, SMS, e-mail)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient", "channel", name="uq_deliveries_dedupe"),
        # What the worker claims: due rows by time.
        Index("ix_deliveries_due", "state", "next_attempt_time"),
        Index("ix_deliveries_node", "node", "create_time"),
        Index("ix_deliveries_recipient", "recipient", "create_time"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    recipient: Mapped[str] = mapped_column(String(RECIPIENT))
    channel: Mapped[str] = mapped_column(String(10))  # webhook | sms | email
    kind: Mapped[str] = mapped_column(String(60))
    node: Mapped[str] = mapped_column(String(PATH))
    # Rendered when queued (from ids and facts, never contact data); the address is read at send time.
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(10))  # queued | sending | sent | failed | dead
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500))
    next_attempt_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # While sending: the claim expires at this time, after which another worker may take it over.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sent_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # A held row's digest, set in the transaction that queues the digest delivery: never twice.
    digest_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    @classmethod
    def untried(
        cls,
        *,
        id: str,
        event_id: str,
        recipient: str,
        channel: str,
        kind: str,
        node: str,
        subject: str,
        body: str,
        link: str,
        state: str,
        due: dt.datetime,
        now: dt.datetime,
    ) -> Delivery:
        """A delivery written `now`, due at `due`, never tried: no attempt, error, lease or digest yet."""
        return cls(
            id=id,
            event_id=event_id,
            recipient=recipient,
            channel=channel,
            kind=kind,
            node=node,
            subject=subject,
            body=body,
            link=link,
            state=state,
            attempts=0,
            last_error="",
            next_attempt_time=due,
            lease_until=None,
            create_time=now,
            update_time=now,
            sent_time=None,
            digest_id=None,
        )


class Endpoint(Base):
    """Where a group robot (per unit or block) or a person's e-mail is reached."""

    __tablename__ = "endpoints"
    __table_args__ = (
        UniqueConstraint("owner", "channel", "address", name="uq_endpoints_owner_channel_address"),
        Index("ix_endpoints_owner", "owner", "channel"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(RECIPIENT))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(500))
    # The robot's HMAC key; kept here because signing needs it, never returned by the API.
    secret: Mapped[str] = mapped_column(String(200))
    node: Mapped[str] = mapped_column(String(PATH))  # for scope checks
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class TemplateText(Base):
    """An edited template; built-in texts (services/notifications/templates.py) apply otherwise."""

    __tablename__ = "templates"

    kind: Mapped[str] = mapped_column(String(60), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    locale: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(80))
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class NoticeRow(Base):
    """A targeted notice (broadcast) and how far its fan-out has come.

    `cursor` is where resolution stands in blocks' household listing; it is advanced in the same
    transaction that writes the inbox items of the page before it, so a service killed mid-way
    resumes exactly after the last page it committed (and the inbox items' unique (event,
    recipient) index holds anyone listed twice to one item).
    """

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_node", "node", "create_time"),
        Index("ix_notices_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(PATH))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(40))
    household_tag: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(RECIPIENT))
    state: Mapped[str] = mapped_column(String(10))  # sending | completed | cancelled
    cursor: Mapped[str] = mapped_column(Text)  # blocks' page token of the next page ('' at start)
    households_done: Mapped[int] = mapped_column(Integer)
    recipients_written: Mapped[int] = mapped_column(Integer)
    recipients_total: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    complete_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ChannelSwitch(Base):
    """One person's choice for one message kind (`*` for all) on one outside channel."""

    __tablename__ = "channel_preferences"

    person: Mapped[str] = mapped_column(String(RECIPIENT), primary_key=True)
    kind: Mapped[str] = mapped_column(String(60), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    digest: Mapped[str] = mapped_column(String(10), server_default="")  # '' | hourly | daily
    digest_time: Mapped[str] = mapped_column(String(8), server_default="")


class QuietHoursRow(Base):
    """A person's quiet window; without a row the defaults (settings) apply."""

    __tablename__ = "quiet_hours"

    person: Mapped[str] = mapped_column(String(RECIPIENT), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    start: Mapped[str] = mapped_column(String(8))
    end: Mapped[str] = mapped_column(String(8))
    time_zone: Mapped[str] = mapped_column(String(60))
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
