"""Who hears what: each domain event becomes notices to audiences (pure: no I/O).

An audience names people by their role, never by their contact: the reporter (`users/{id}`), a
household's linked residents, a unit's members, a block's staff in a role, the holders of a role
at a node, the places of a published list. Resolving them to accounts and addresses is the job of
services/notifications/audiences.py, with the service's own token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1 import events_pb2 as blocks_events
from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2 as identity_events
from gov.points.v1 import events_pb2 as points_events
from gov.points.v1 import points_pb2
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2
from govkit.events import unpack_payload

# Consumed streams and the subjects routed from each (the consumers filter on these).
SUBJECTS: dict[str, tuple[str, ...]] = {
    "TICKETS": ("tickets.v1.ticket.>",),
    "BLOCKS": ("blocks.v1.staff.>",),
    "IDENTITY": ("identity.v1.password.reset", "identity.v1.login.locked"),
    "POINTS": (
        "points.v1.entry.posted",
        "points.v1.points.expiring",
        "points.v1.redemption.reserved",
        "points.v1.list.published",
    ),
}

# Reporter-facing ticket transitions, each its own message kind `ticket.<action>`.
REPORTER_ACTIONS = frozenset({"accepted", "rejected", "merged", "dispatched", "resolved", "reopened"})


@dataclass(frozen=True)
class Audience:
    """`person` users/{id}; `household` households/{id}; `unit` units/{code}; `block_staff` a block
    path with a staff role; `node_role` a node path with an identity role; `ranking` rankings/{id}."""

    kind: str
    ref: str
    role: str = ""

    @property
    def robot_owner(self) -> str:
        """Whose group robot hears this audience's messages (empty: none)."""
        if self.kind == "unit":
            return self.ref
        if self.kind in ("block_staff", "node_role"):
            return f"nodes/{self.ref}"
        return ""


def person(subject: str) -> tuple[Audience, ...]:
    # Tickets filed by service accounts (Open311 bridges) have nobody to tell.
    return (Audience("person", subject),) if subject.startswith("users/") else ()


def owner(subject: str) -> tuple[Audience, ...]:
    if subject.startswith("households/"):
        return (Audience("household", subject),)
    return person(subject)


@dataclass(frozen=True)
class Notice:
    kind: str
    audience: tuple[Audience, ...]
    resource: str
    node: str
    params: Mapping[str, str] = field(default_factory=dict)
    urgent: bool = False
    # Worth a text message (costly: only what a person must act on soon).
    sms: bool = False


def _id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _ticket_params(t: tickets_events.TicketSummary) -> dict[str, str]:
    return {
        "ticket": t.name,
        "ticket_id": _id(t.name),
        "category": _id(t.category),
        "node": t.node,
        "state": tickets_pb2.TicketState.Name(t.state).removeprefix("TICKET_STATE_").lower(),
    }


def _oversight(t: tickets_events.TicketSummary) -> tuple[Audience, ...]:
    """Who watches a late or escalated ticket: its block's supervisor, its street's dispatcher and
    leader."""
    found: list[Audience] = []
    if t.node:
        found.append(Audience("block_staff", t.node, "supervisor"))
    if t.street:
        found += [Audience("node_role", t.street, "dispatcher"), Audience("node_role", t.street, "leader")]
    return tuple(found)


def _district(t: tickets_events.TicketSummary) -> tuple[Audience, ...]:
    """Who takes an escalation up: the district's dispatchers (they accept it) and its leader."""
    if not t.district:
        return ()
    return (Audience("node_role", t.district, "dispatcher"), Audience("node_role", t.district, "leader"))


def _units(t: tickets_events.TicketSummary, status: int, only: str = "") -> tuple[Audience, ...]:
    return tuple(
        Audience("unit", u.unit) for u in t.units if u.status == status and (not only or u.unit == only)
    )


def route_ticket(event: event_pb2.Event) -> list[Notice]:
    action = event.type.rsplit(".", 1)[-1]
    if action == "overdue":
        return _ticket_overdue(unpack_payload(event, tickets_events.TicketOverdue))
    if action == "created" or not event.type.startswith("tickets.v1.ticket."):
        return []
    moved = unpack_payload(event, tickets_events.TicketTransitioned)
    t = moved.ticket
    params = _ticket_params(t)
    notices: list[Notice] = []
    if action in REPORTER_ACTIONS:
        extra = {"merged_into": _id(t.merged_into)} if action == "merged" else {}
        if action == "resolved":
            extra["rating_link"] = f"/tickets/{_id(t.name)}/rating"
        notices.append(
            Notice(
                f"ticket.{action}",
                person(t.reporter),
                t.name,
                t.node,
                {**params, **extra},
                sms=action == "resolved",
            )
        )
    if action == "dispatched":
        dispatched = tickets_pb2.UNIT_STATUS_DISPATCHED
        units = _units(t, dispatched, moved.entry.unit) or _units(t, dispatched)
        notices.append(Notice("ticket.assigned", units, t.name, t.node, params, sms=True))
    if action == "escalated":
        district = _district(t)
        notices.append(
            Notice(
                "ticket.escalated", _oversight(t) + district, t.name, t.node, params, urgent=True, sms=True
            )
        )
    return [n for n in notices if n.audience]


def _ticket_overdue(overdue: tickets_events.TicketOverdue) -> list[Notice]:
    t = overdue.ticket
    params = {
        **_ticket_params(t),
        "deadline": overdue.deadline.ToDatetime().strftime("%Y-%m-%d %H:%M"),
        "deadline_kind": "acknowledge"
        if overdue.kind == tickets_events.DEADLINE_KIND_ACKNOWLEDGE
        else "resolve",
    }
    audience = _oversight(t)
    if overdue.escalated:
        audience += _district(t)
    notices = [Notice("ticket.overdue", audience, t.name, t.node, params, urgent=True, sms=True)]
    if overdue.kind == tickets_events.DEADLINE_KIND_ACKNOWLEDGE:
        late = _units(t, tickets_pb2.UNIT_STATUS_DISPATCHED)
        notices.append(Notice("ticket.unacknowledged", late, t.name, t.node, params, urgent=True, sms=True))
    return [n for n in notices if n.audience]


def route_blocks(event: event_pb2.Event) -> list[Notice]:
    verb = {"blocks.v1.staff.assigned": "assigned", "blocks.v1.staff.removed": "removed"}.get(event.type)
    if verb is None:
        return []
    payload: Message = unpack_payload(
        event, blocks_events.StaffAssigned if verb == "assigned" else blocks_events.StaffRemoved
    )
    a: blocks_pb2.StaffAssignment = payload.assignment  # type: ignore[attr-defined]
    params = {
        "block": a.block,
        "role": blocks_pb2.StaffRole.Name(a.role).removeprefix("STAFF_ROLE_").lower(),
    }
    return [Notice(f"staff.{verb}", person(a.user), a.name, a.block, params)]


def route_identity(event: event_pb2.Event) -> list[Notice]:
    if event.type == "identity.v1.password.reset":
        reset = unpack_payload(event, identity_events.PasswordReset)
        return [Notice("account.password_reset", person(reset.user), reset.user, "", urgent=True, sms=True)]
    if event.type == "identity.v1.login.locked":
        locked = unpack_payload(event, identity_events.LoginLocked)
        params = {
            "failed_attempts": str(locked.failed_attempts),
            "locked_seconds": str(locked.locked_seconds),
        }
        return [Notice("account.login_locked", person(locked.user), locked.user, "", params, urgent=True)]
    return []


def route_points(event: event_pb2.Event) -> list[Notice]:
    if event.type == "points.v1.entry.posted":
        return _entry_posted(unpack_payload(event, points_events.EntryRecorded).entry)
    if event.type == "points.v1.points.expiring":
        exp = unpack_payload(event, points_events.PointsExpiring)
        params = {"points": str(exp.points), "expire_time": exp.expire_time.ToDatetime().strftime("%Y-%m-%d")}
        return _kept([Notice("points.expiring", owner(exp.owner), exp.account, "", params)])
    if event.type == "points.v1.redemption.reserved":
        r = unpack_payload(event, points_events.RedemptionChanged).redemption
        params = {"redemption": r.redemption, "points": str(r.points), "quantity": str(r.quantity)}
        notice = Notice("points.redemption_ready", person(r.resident), r.redemption, "", params, sms=True)
        return _kept([notice])
    if event.type == "points.v1.list.published":
        listed = unpack_payload(event, points_events.ListPublished)
        kind = "red" if listed.kind == points_pb2.RANKING_KIND_RED else "black"
        audience = (Audience("ranking", listed.ranking),)
        return [
            Notice(f"points.list_{kind}", audience, listed.ranking, listed.node, {"ranking": listed.ranking})
        ]
    return []


def _entry_posted(e: points_events.EntryFacts) -> list[Notice]:
    # Pending entries wait for the supervisor; the POST that settles them is the news.
    if e.phase not in (points_pb2.ENTRY_PHASE_POSTED, points_pb2.ENTRY_PHASE_POST):
        return []
    params = {"points": str(e.amount), "award": e.award, "entry": e.entry}
    if e.kind == points_pb2.ENTRY_KIND_AWARD:
        return _kept([Notice("points.awarded", owner(e.owner), e.award or e.entry, "", params)])
    if e.kind == points_pb2.ENTRY_KIND_PENALTY:
        params["appeal_link"] = f"/points/awards/{_id(e.award)}/appeal" if e.award else ""
        return _kept([Notice("points.penalty", owner(e.owner), e.award or e.entry, "", params)])
    return []


def _kept(notices: list[Notice]) -> list[Notice]:
    return [n for n in notices if n.audience]


_ROUTES: dict[str, Callable[[event_pb2.Event], list[Notice]]] = {
    "tickets": route_ticket,
    "blocks": route_blocks,
    "identity": route_identity,
    "points": route_points,
}


def route(event: event_pb2.Event) -> list[Notice]:
    """The notices an event calls for (none for events nobody needs to hear about)."""
    handler = _ROUTES.get(event.type.split(".", 1)[0])
    return handler(event) if handler is not None else []
