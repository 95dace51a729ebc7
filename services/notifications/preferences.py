"""A person's own preferences: channels per message kind, and quiet hours.

Read by the intake in the transaction that queues deliveries (`Policy.for_person`), so a message
is held or skipped as the person asked at the moment it is queued. Nobody sets another's.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.notifications.v1 import notifications_pb2 as pb
from govkit.auth.principal import Principal
from govkit.db import Database, utcnow
from govkit.errors import InvalidArgument
from govkit.protobuf import timestamp
from services.notifications import convert
from services.notifications.inbox import owner
from services.notifications.models import ChannelSwitch, QuietHoursRow
from services.notifications.quiet import QuietWindow, next_digest, parse_clock, parse_zone

_KIND = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*)$")
MAX_ROWS = 200
ANY_KIND = "*"


@dataclass(frozen=True)
class QuietDefaults:
    start: str
    end: str
    time_zone: str


@dataclass(frozen=True)
class Digest:
    frequency: str  # hourly | daily
    at: dt.time  # daily: the wall-clock time in `zone`
    zone: ZoneInfo


@dataclass(frozen=True)
class Policy:
    """What one person asked for, as the intake applies it."""

    switches: dict[tuple[str, str], bool]
    window: QuietWindow | None
    digests: dict[tuple[str, str], Digest] = field(default_factory=dict)

    def allows(self, kind: str, channel: str) -> bool:
        found = self.switches.get((kind, channel))
        return self.switches.get((ANY_KIND, channel), True) if found is None else found

    def digest(self, kind: str, channel: str, *, urgent: bool) -> Digest | None:
        """The digest a message of `kind` on `channel` waits for. An urgent message (routing's flag:
        overdue, escalation, a unit late to acknowledge, account security) waits for none, as it
        waits for no quiet hours, whatever the person chose for its kind or for `*`."""
        if urgent:
            return None
        if (kind, channel) in self.switches:
            return self.digests.get((kind, channel))
        return self.digests.get((ANY_KIND, channel))

    def hold_until(self, kind: str, channel: str, now: dt.datetime, *, urgent: bool) -> dt.datetime | None:
        """When a message of `kind` on `channel` goes out in a digest; None: one by one."""
        d = self.digest(kind, channel, urgent=urgent)
        return None if d is None else next_digest(now, d.frequency, d.at, d.zone)

    def release(self, now: dt.datetime, *, urgent: bool) -> dt.datetime:
        return now if self.window is None else self.window.release(now, urgent=urgent)


async def policy_for(session: AsyncSession, person: str, defaults: QuietDefaults) -> Policy:
    rows = (await session.scalars(select(ChannelSwitch).where(ChannelSwitch.person == person))).all()
    switches = {(r.kind, r.channel): r.enabled for r in rows}
    row = await session.get(QuietHoursRow, person)
    zone = parse_zone(row.time_zone if row is not None else defaults.time_zone, "time_zone")
    if row is None:
        window: QuietWindow | None = QuietWindow.of(defaults.start, defaults.end, defaults.time_zone)
    else:
        window = QuietWindow.of(row.start, row.end, row.time_zone) if row.enabled else None
    digests = {
        (r.kind, r.channel): Digest(r.digest, parse_clock(r.digest_time or "00:00", "digest_time"), zone)
        for r in rows
        if r.enabled and r.digest
    }
    return Policy(switches, window, digests)


class Preferences:
    def __init__(self, db: Database, defaults: QuietDefaults) -> None:
        self.db = db
        self.defaults = defaults

    async def get(self, principal: Principal) -> pb.Preferences:
        me = owner(principal)
        async with self.db.sessions() as session:
            return await self._read(session, me)

    async def _read(self, session: AsyncSession, me: str) -> pb.Preferences:
        rows = (
            await session.scalars(
                select(ChannelSwitch)
                .where(ChannelSwitch.person == me)
                .order_by(ChannelSwitch.kind, ChannelSwitch.channel)
            )
        ).all()
        quiet = await session.get(QuietHoursRow, me)
        d = self.defaults
        return pb.Preferences(
            name=f"{me}/preferences",
            channels=[
                pb.ChannelPreference(
                    kind=r.kind,
                    channel=convert.CHANNELS[r.channel],
                    enabled=r.enabled,
                    digest=convert.DIGESTS[r.digest],
                    digest_time=r.digest_time,
                )
                for r in rows
            ],
            quiet_hours=(
                pb.QuietHours(
                    enabled=quiet.enabled, start=quiet.start, end=quiet.end, time_zone=quiet.time_zone
                )
                if quiet is not None
                else pb.QuietHours(enabled=True, start=d.start, end=d.end, time_zone=d.time_zone)
            ),
            update_time=timestamp(quiet.update_time if quiet is not None else None),
        )

    async def update(self, principal: Principal, prefs: pb.Preferences) -> pb.Preferences:
        me = owner(principal)
        if prefs.name and prefs.name != f"{me}/preferences":
            raise InvalidArgument("must be the caller's own preferences", field="preferences.name")
        if len(prefs.channels) > MAX_ROWS:
            raise InvalidArgument(f"at most {MAX_ROWS}", field="preferences.channels")
        switches: dict[tuple[str, str], tuple[bool, str, str]] = {}
        for i, c in enumerate(prefs.channels):
            f = f"preferences.channels[{i}]"
            if not _KIND.match(c.kind) or len(c.kind) > 60:
                raise InvalidArgument("must be a message kind (e.g. ticket.accepted) or *", field=f"{f}.kind")
            channel = convert.channel_name(c.channel, f"{f}.channel")
            if channel == "inbox":
                if not c.enabled:
                    raise InvalidArgument("the inbox cannot be switched off", field=f"{f}.enabled")
                continue  # always on: nothing to store
            if (c.kind, channel) in switches:
                raise InvalidArgument("named twice", field=f)
            digest = convert.digest_name(c.digest, f"{f}.digest")
            at = ""
            if digest == "daily":
                parse_clock(c.digest_time, f"{f}.digest_time")
                at = c.digest_time
            elif c.digest_time:
                raise InvalidArgument("only a daily digest has a time", field=f"{f}.digest_time")
            if digest and channel == "webhook":
                raise InvalidArgument("group robots take no digests", field=f"{f}.digest")
            switches[(c.kind, channel)] = (c.enabled, digest, at)
        q = prefs.quiet_hours if prefs.HasField("quiet_hours") else None
        d = self.defaults
        start = (q.start if q else "") or d.start
        end = (q.end if q else "") or d.end
        zone = (q.time_zone if q else "") or d.time_zone
        enabled = q.enabled if q else True
        try:
            QuietWindow.of(start, end, zone)
        except InvalidArgument as exc:
            raise InvalidArgument(exc.message, field=f"preferences.quiet_hours.{exc.field}") from None
        async with self.db.transaction() as session:
            await session.execute(delete(ChannelSwitch).where(ChannelSwitch.person == me))
            for (kind, channel), (on, digest, at) in switches.items():
                session.add(
                    ChannelSwitch(
                        person=me, kind=kind, channel=channel, enabled=on, digest=digest, digest_time=at
                    )
                )
            row = await session.get(QuietHoursRow, me)
            if row is None:
                row = QuietHoursRow(person=me)
                session.add(row)
            row.enabled, row.start, row.end, row.time_zone, row.update_time = (
                enabled,
                start,
                end,
                zone,
                utcnow(),
            )
            await session.flush()
            return await self._read(session, me)
