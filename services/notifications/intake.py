"""Turning a consumed event into inbox items and queued deliveries, in the consumer's transaction.

The consumer (govkit.consumer) runs this once per event id; within one event each person gets one
inbox item (the first notice that names them) and each recipient one delivery per channel, and
unique indexes on (event, recipient[, channel]) hold that against anything else. Audiences are
resolved with the service's own token before the transaction opens (`prepare`); a lookup that fails
raises, and the event is retried whole.

The consumer applies a fetched batch of events in one transaction, so what one transaction reads
once serves all its events: the edited templates, each person's preferences. Its inbox items are
inserted together, in one statement just before the commit (the database assigns their sequences
there), and reach the hub once, together, after the commit, in sequence order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gov.common.v1 import event_pb2
from govkit.consumer import Writes
from govkit.db import new_id, utcnow
from services.notifications import templates
from services.notifications.directory import Directory
from services.notifications.domain import State
from services.notifications.hub import InboxHub
from services.notifications.models import Delivery, Endpoint, InboxItem, TemplateText
from services.notifications.preferences import Policy, QuietDefaults, policy_for
from services.notifications.routing import Notice, route
from services.notifications.texts import DEFAULT_LOCALE


@dataclass(frozen=True)
class IntakeSettings:
    link_base: str
    email_enabled: bool
    quiet: QuietDefaults


async def load_edits(session: AsyncSession) -> templates.Edits:
    rows = (await session.scalars(select(TemplateText))).all()
    return {(r.kind, r.channel, r.locale): (r.subject, r.body) for r in rows}


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's transaction has committed (never if it rolls back)."""
    sa_event.listen(session.sync_session, "after_commit", lambda _s: callback(), once=True)


_ITEMS = cast(Table, InboxItem.__table__)
_ITEM_COLUMNS = [c.name for c in _ITEMS.columns if c.name != "seq"]


def _insert_items(session: Session, items: list[InboxItem]) -> None:
    """One INSERT for the transaction's items (the ORM would insert them one at a time to learn each
    sequence); each item then takes the sequence the database gave it."""
    if not items:
        return
    rows = [{name: getattr(item, name) for name in _ITEM_COLUMNS} for item in items]
    # Sequences in the order of the rows (the order the events were fetched), so a person's items
    # keep their events' order: PostgreSQL is made to insert them in that order (INSERT ... SELECT
    # ... ORDER BY, still one statement); SQLite inserts a VALUES list in order anyway, and asking it
    # would make SQLAlchemy insert one row at a time.
    ordered = session.get_bind().dialect.name != "sqlite"
    result = session.execute(
        insert(_ITEMS).returning(_ITEMS.c.id, _ITEMS.c.seq, sort_by_parameter_order=ordered), rows
    )
    seqs = {item_id: seq for item_id, seq in result.all()}
    for item in items:
        item.seq = seqs[item.id]


@dataclass
class _Written:
    """What one transaction's events wrote, handed on once it commits; and what it read once."""

    items: list[InboxItem] = field(default_factory=list)
    queued: int = 0
    edits: templates.Edits | None = None
    policies: dict[str, Policy] = field(default_factory=dict)


_WRITTEN = "notifications.intake"


@dataclass(eq=False)
class Intake:
    directory: Directory
    hub: InboxHub
    wake_worker: Callable[[], None]
    settings: IntakeSettings
    clock: Callable[[], dt.datetime] = utcnow

    async def _policy(self, session: AsyncSession, user: str, cache: dict[str, Policy]) -> Policy:
        if user not in cache:
            cache[user] = await policy_for(session, user, self.settings.quiet)
        return cache[user]

    def _written(self, session: AsyncSession) -> _Written:
        """This transaction's record; the first call arranges its hand-over after the commit."""
        written = session.info.get(_WRITTEN)
        if isinstance(written, _Written):
            return written
        written = session.info[_WRITTEN] = _Written()
        hub, wake = self.hub, self.wake_worker

        def committed() -> None:
            # Sequences come from the database: a stream drops what is not newer than its last item,
            # so each recipient's items must reach the hub in sequence order.
            hub.publish(sorted(written.items, key=lambda item: item.seq))
            if written.queued:
                wake()

        # Runs inside the commit, before its flush: a unique clash fails the commit like any write.
        sa_event.listen(
            session.sync_session, "before_commit", lambda s: _insert_items(s, written.items), once=True
        )
        after_commit(session, committed)
        return written

    def _params(self, notice: Notice) -> dict[str, str]:
        base = self.settings.link_base.rstrip("/")
        params = {
            k: (base + v if k.endswith("_link") and v.startswith("/") else v)
            for k, v in notice.params.items()
        }
        kind, _, rest = notice.resource.partition("/")
        params["link"] = (
            f"{base}/{kind}/{rest}" if kind in ("tickets", "awards", "redemptions", "rankings") else ""
        )
        return params

    async def prepare(self, event: event_pb2.Event) -> Writes:
        """Who each notice reaches, asked of the other services before any transaction opens; then
        the writes, made in the consumer's transaction (nothing for an event half-resolved)."""
        notices = route(event)
        resolved = [(n, [p for a in n.audience for p in await self.directory.people(a)]) for n in notices]

        async def writes(session: AsyncSession) -> None:
            if resolved:
                await self._write(session, event, resolved)

        return writes

    async def _write(
        self, session: AsyncSession, event: event_pb2.Event, resolved: list[tuple[Notice, list[str]]]
    ) -> None:
        record = self._written(session)
        if record.edits is None:
            record.edits = await load_edits(session)
        edits = record.edits
        people: set[str] = set()
        robots: set[str] = set()
        queued = 0
        now = self.clock()
        policies = record.policies
        for notice, members in resolved:
            params = self._params(notice)

            def queue(
                recipient: str,
                channel: str,
                notice: Notice = notice,
                params: dict[str, str] = params,
                due: dt.datetime = now,
                held: bool = False,
            ) -> None:
                text = templates.render(notice.kind, channel, DEFAULT_LOCALE, params, edits)
                session.add(
                    Delivery.untried(
                        id=new_id(),
                        event_id=event.id,
                        recipient=recipient,
                        channel=channel,
                        kind=notice.kind,
                        node=notice.node,
                        subject=text.subject[:200],
                        body=text.body,
                        link=params["link"][:500],
                        state=(State.HELD if held else State.QUEUED).value,
                        due=due,
                        now=now,
                    )
                )

            for user in dict.fromkeys(members):
                if user in people or not user.startswith("users/"):
                    continue
                people.add(user)
                text = templates.render(notice.kind, "inbox", DEFAULT_LOCALE, params, edits)
                item = InboxItem(
                    id=new_id(),
                    recipient=user,
                    event_id=event.id,
                    kind=notice.kind,
                    title=text.subject[:200],
                    body=text.body,
                    link=params["link"][:500],
                    resource=notice.resource[:200],
                    node=notice.node,
                    urgent=notice.urgent,
                    create_time=now,
                    read_time=None,
                )
                record.items.append(item)  # inserted with the transaction's others, at its commit
                # The person's own choices: channels off for this kind are skipped, and a message
                # arriving in their quiet hours waits for the window's end unless it is urgent.
                # A kind they take as a digest is held (state `held`) until the digest time.
                # Read only for a notice that may go out on a channel (an inbox item needs none).
                for channel in ("sms", "email"):
                    if channel == "sms" and not notice.sms:
                        continue
                    if channel == "email" and not self.settings.email_enabled:
                        continue
                    policy = await self._policy(session, user, policies)
                    if not policy.allows(notice.kind, channel):
                        continue
                    if channel == "email" and not await _has_endpoint(session, user, "email"):
                        continue
                    due = policy.release(now, urgent=notice.urgent)
                    digest_time = policy.hold_until(notice.kind, channel, now, urgent=notice.urgent)
                    if digest_time is None:
                        queue(user, channel, due=due)
                        queued += 1
                    else:
                        queue(user, channel, due=digest_time, held=True)
            for owner in dict.fromkeys(a.robot_owner for a in notice.audience if a.robot_owner):
                if owner not in robots and await _has_endpoint(session, owner, "webhook"):
                    robots.add(owner)
                    queue(owner, "webhook")
                    queued += 1
        # The items' sequences are assigned when the transaction flushes them, before it commits:
        # one flush for all the events of a batch.
        record.queued += queued


async def _has_endpoint(session: AsyncSession, owner: str, channel: str) -> bool:
    found = await session.scalar(
        select(Endpoint.id).where(Endpoint.owner == owner, Endpoint.channel == channel).limit(1)
    )
    return found is not None
