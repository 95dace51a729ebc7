"""Urgent messages bypass digests as they bypass quiet hours: a person's digest (for the kind or for
`*`) never holds a message routing flags urgent, and holds every other."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1 import events_pb2 as blocks_events
from gov.identity.v1 import events_pb2 as identity_events
from gov.points.v1 import events_pb2 as points_events
from gov.points.v1 import points_pb2
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2
from services.notifications import convert  # noqa: F401 - first, as the service imports them
from services.notifications.preferences import Digest, Policy
from services.notifications.quiet import QuietWindow
from services.notifications.routing import route
from tests.unit.test_notifications_routing import BLOCK, event, ticket, transition

SHANGHAI = ZoneInfo("Asia/Shanghai")


def every_kind_of_event() -> list:  # type: ignore[type-arg]
    late = [tickets_events.TicketUnitSummary(unit="units/a", status=tickets_pb2.UNIT_STATUS_DISPATCHED)]
    dispatched = [tickets_events.TicketUnitSummary(unit="units/a", status=tickets_pb2.UNIT_STATUS_DISPATCHED)]
    staff = blocks_pb2.StaffAssignment(
        name=f"nodes/{BLOCK}/staff/s1", block=BLOCK, user="users/u1", role=blocks_pb2.STAFF_ROLE_SUPERVISOR
    )
    entry = points_events.EntryFacts(
        entry="entries/e1", kind=points_pb2.ENTRY_KIND_PENALTY, phase=points_pb2.ENTRY_PHASE_POSTED, amount=5,
        owner="users/r1", award="awards/a1",
    )  # fmt: skip
    award = points_events.EntryFacts(
        entry="entries/e2", kind=points_pb2.ENTRY_KIND_AWARD, phase=points_pb2.ENTRY_PHASE_POSTED, amount=5,
        owner="users/r1", award="awards/a2",
    )  # fmt: skip
    return [
        *(transition(a) for a in ("accepted", "rejected", "merged", "resolved", "reopened", "escalated")),
        transition("dispatched", ticket(units=dispatched)),
        event(
            "tickets.v1.ticket.overdue",
            tickets_events.TicketOverdue(
                ticket=ticket(units=late), kind=tickets_events.DEADLINE_KIND_ACKNOWLEDGE, escalated=True
            ),
        ),
        event("blocks.v1.staff.assigned", blocks_events.StaffAssigned(assignment=staff)),
        event("blocks.v1.staff.removed", blocks_events.StaffRemoved(assignment=staff)),
        event("points.v1.entry.posted", points_events.EntryRecorded(entry=entry)),
        event("points.v1.entry.posted", points_events.EntryRecorded(entry=award)),
        event("points.v1.points.expiring", points_events.PointsExpiring(owner="users/r1", points=3)),
        event("identity.v1.password.reset", identity_events.PasswordReset(user="users/u1")),
        event("identity.v1.login.locked", identity_events.LoginLocked(user="users/u1")),
    ]


def test_a_digest_never_holds_an_urgent_message_and_holds_every_other() -> None:
    daily = Digest("daily", dt.time(8, 30), SHANGHAI)
    window = QuietWindow.of("22:00", "07:00", "Asia/Shanghai")
    now = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # 23:00 in Shanghai: inside quiet hours
    next_digest = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)  # the next 08:30 in Shanghai
    notices = [n for e in every_kind_of_event() for n in route(e)]
    assert {n.kind for n in notices if n.urgent} >= {"ticket.overdue", "ticket.escalated"}
    quiet_end = window.release(now, urgent=False)  # 07:00 in Shanghai
    everything = Policy({("*", "email"): True}, window, {("*", "email"): daily})
    for n in notices:
        named = Policy({(n.kind, "email"): True}, window, {(n.kind, "email"): daily})
        for policy in (everything, named):
            held = policy.hold_until(n.kind, "email", now, urgent=n.urgent)
            assert held == (None if n.urgent else next_digest), n.kind
            assert policy.release(now, urgent=n.urgent) == (now if n.urgent else quiet_end)
