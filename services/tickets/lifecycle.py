"""The work-order lifecycle as an explicit state machine: pure rules, no storage.

    submitted ─accept──▶ accepted ─dispatch──▶ dispatched ─(lead) start──▶ in_progress ─resolve─▶ resolved
        │                   │  ▲                   │  each unit: acknowledge ("reports in") or return
        ├─reject──▶ rejected│  └──── lead returns ─┘
        └─merge───▶ merged  └─escalate─▶ escalated ─accept_escalation─▶ accepted (now the district's)
    resolved ─rate─▶ resolved (rated) ─close─▶ closed;  resolved/closed ─reopen─▶ accepted

"The block whistles, departments report in": a dispatch names one lead unit and any assisting
units; each must acknowledge or return it. Work starts when the lead has acknowledged; a lead
that returns it sends the ticket back to the dispatcher. A street that cannot handle a ticket
escalates it to the district, whose dispatcher must accept and dispatch it.

`apply()` checks the transition and who may make it, and returns the new ticket and the
timeline entry to append; a refused action raises and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from govkit.auth.scopes import covers
from govkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied


class State(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    MERGED = "merged"
    ESCALATED = "escalated"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    MERGE = "merge"
    ESCALATE = "escalate"
    ACCEPT_ESCALATION = "accept_escalation"
    DISPATCH = "dispatch"
    ACKNOWLEDGE = "acknowledge"
    RETURN = "return"
    START = "start"
    RESOLVE = "resolve"
    RATE = "rate"
    CLOSE = "close"
    REOPEN = "reopen"


class UnitStatus(StrEnum):
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    RETURNED = "returned"


# (from, action) -> to. Unit-level actions keep the state unless noted in apply().
TRANSITIONS: Mapping[tuple[State, Action], State] = {
    (State.SUBMITTED, Action.ACCEPT): State.ACCEPTED,
    (State.SUBMITTED, Action.REJECT): State.REJECTED,
    (State.SUBMITTED, Action.MERGE): State.MERGED,
    (State.SUBMITTED, Action.ESCALATE): State.ESCALATED,
    (State.ACCEPTED, Action.DISPATCH): State.DISPATCHED,
    (State.ACCEPTED, Action.ESCALATE): State.ESCALATED,
    (State.ESCALATED, Action.ACCEPT_ESCALATION): State.ACCEPTED,
    (State.DISPATCHED, Action.ESCALATE): State.ESCALATED,
    (State.DISPATCHED, Action.ACKNOWLEDGE): State.DISPATCHED,
    (State.DISPATCHED, Action.RETURN): State.DISPATCHED,
    (State.DISPATCHED, Action.START): State.IN_PROGRESS,
    (State.IN_PROGRESS, Action.RESOLVE): State.RESOLVED,
    (State.RESOLVED, Action.RATE): State.RESOLVED,
    (State.RESOLVED, Action.CLOSE): State.CLOSED,
    (State.RESOLVED, Action.REOPEN): State.ACCEPTED,
    (State.CLOSED, Action.REOPEN): State.ACCEPTED,
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a user or service account, the role they act in, and where."""

    subject: str
    role: str  # dispatcher, leader, unit_staff, supervisor, governor, assistant, resident, system
    scope: str = ""  # region path the role covers
    unit: str = ""  # for unit_staff: the unit they act for


@dataclass(frozen=True)
class Ticket:
    id: str
    state: State
    node: str  # the block (or other node) the matter belongs to
    street: str  # the street that owns it, e.g. yuhu/wanlou
    district: str
    reporter: str  # subject of whoever filed it
    escalated: bool = False  # owned by the district since an accepted escalation
    units: Mapping[str, UnitStatus] = field(default_factory=dict)
    lead_unit: str = ""
    rating: int | None = None
    resolved_at: dt.datetime | None = None

    @property
    def owner_scope(self) -> str:
        return self.district if self.escalated else self.street


@dataclass(frozen=True)
class Entry:
    """One line of the append-only timeline."""

    action: Action
    actor: str
    time: dt.datetime
    from_state: State
    to_state: State
    note: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Command:
    action: Action
    note: str = ""
    lead_unit: str = ""  # dispatch
    assisting_units: tuple[str, ...] = ()  # dispatch
    rating: int | None = None  # rate
    reason: str = ""  # reject, merge, return, escalate, reopen


def _dispatcher_of(ticket: Ticket, actor: Actor) -> bool:
    return actor.role in ("dispatcher", "leader") and covers(actor.scope, ticket.owner_scope)


def _check_actor(
    ticket: Ticket, command: Command, actor: Actor, reopen_window: dt.timedelta, now: dt.datetime
) -> None:
    a = command.action
    if actor.role == "system":
        # The platform itself only escalates, by a category's rule after a missed deadline.
        if a != Action.ESCALATE:
            raise PermissionDenied(f"the system does not {a}")
        return
    if a in (Action.ACCEPT, Action.REJECT, Action.MERGE, Action.DISPATCH, Action.ESCALATE, Action.CLOSE):
        if not _dispatcher_of(ticket, actor):
            raise PermissionDenied(f"only a dispatcher of {ticket.owner_scope} may {a}")
    elif a == Action.ACCEPT_ESCALATION:
        if not (
            actor.role in ("dispatcher", "leader")
            and covers(actor.scope, ticket.district)
            and actor.scope.count("/") == 0
        ):
            raise PermissionDenied("only the district's dispatcher may accept an escalation")
    elif a in (Action.ACKNOWLEDGE, Action.RETURN, Action.START, Action.RESOLVE):
        if actor.role != "unit_staff" or actor.unit not in ticket.units:
            raise PermissionDenied("only staff of a unit this ticket was dispatched to may do that")
        if a in (Action.START, Action.RESOLVE) and actor.unit != ticket.lead_unit:
            raise PermissionDenied("only the lead unit starts and resolves the work")
    elif a == Action.RATE:
        # The reporter rates; staff may record a rating the reporter gave by phone.
        if (
            actor.subject != ticket.reporter
            and not _dispatcher_of(ticket, actor)
            and not (actor.role in ("governor", "assistant") and covers(actor.scope, ticket.node))
        ):
            raise PermissionDenied("only the reporter, or staff recording the reporter's rating, may rate")
    elif a == Action.REOPEN:
        if actor.role == "supervisor" and covers(actor.scope, ticket.node):
            return
        if actor.subject == ticket.reporter:
            if ticket.rating is not None and ticket.rating >= 4:
                raise FailedPrecondition("only a dissatisfied reporter (rating below 4) may reopen")
            if ticket.resolved_at is None or now - ticket.resolved_at > reopen_window:
                raise FailedPrecondition("the window for the reporter to reopen has passed")
            return
        raise PermissionDenied("only the block's supervisor or the dissatisfied reporter may reopen")


def _check_command(ticket: Ticket, command: Command) -> None:
    a = command.action
    if (
        a in (Action.REJECT, Action.MERGE, Action.RETURN, Action.ESCALATE, Action.REOPEN)
        and not command.reason.strip()
    ):
        raise InvalidArgument(f"is required to {a}", field="reason")
    if a == Action.DISPATCH:
        if not command.lead_unit:
            raise InvalidArgument("is required", field="lead_unit")
        if command.lead_unit in command.assisting_units or len(set(command.assisting_units)) != len(
            command.assisting_units
        ):
            raise InvalidArgument(
                "each unit appears once, and the lead is not also assisting", field="assisting_units"
            )
    if a == Action.RATE and (command.rating is None or not 1 <= command.rating <= 5):
        raise InvalidArgument("must be 1 to 5", field="rating")
    if a == Action.RESOLVE and not command.note.strip():
        raise InvalidArgument("the result is required", field="note")


def _check_state(ticket: Ticket, command: Command) -> None:
    a = command.action
    if a == Action.START and ticket.units.get(ticket.lead_unit) != UnitStatus.ACKNOWLEDGED:
        raise FailedPrecondition("the lead unit must acknowledge (report in) before starting")
    if a == Action.ESCALATE and ticket.escalated:
        raise FailedPrecondition("the ticket is already the district's; there is no one above to escalate to")
    if a == Action.CLOSE and ticket.rating is None:
        raise FailedPrecondition("a resolved ticket is rated (or the rating recorded) before it closes")


def apply(
    ticket: Ticket,
    command: Command,
    actor: Actor,
    now: dt.datetime,
    *,
    reopen_window: dt.timedelta = dt.timedelta(days=7),
) -> tuple[Ticket, Entry]:
    """The ticket after `command`, and its timeline entry. Raises without changing anything."""
    # Bad input first, then who is asking, and only then what the ticket's state allows.
    _check_command(ticket, command)
    _check_actor(ticket, command, actor, reopen_window, now)
    target = TRANSITIONS.get((ticket.state, command.action))
    if target is None:
        raise FailedPrecondition(f"cannot {command.action} a ticket that is {ticket.state}")
    _check_state(ticket, command)
    # Fields of Ticket by name; their types differ, dataclasses.replace checks them at runtime.
    changes: dict[str, Any] = {"state": target}
    unit = ""
    match command.action:
        case Action.DISPATCH:
            units = {command.lead_unit: UnitStatus.DISPATCHED}
            units.update({u: UnitStatus.DISPATCHED for u in command.assisting_units})
            changes.update(units=units, lead_unit=command.lead_unit)
        case Action.ACKNOWLEDGE | Action.RETURN:
            unit = actor.unit
            if ticket.units[unit] != UnitStatus.DISPATCHED:
                raise FailedPrecondition(f"{unit} has already {ticket.units[unit]} this ticket")
            status = UnitStatus.ACKNOWLEDGED if command.action == Action.ACKNOWLEDGE else UnitStatus.RETURNED
            changes["units"] = {**ticket.units, unit: status}
            if command.action == Action.RETURN and unit == ticket.lead_unit:
                # Mis-dispatched: back to the dispatcher, who dispatches again.
                changes.update(state=State.ACCEPTED, units={}, lead_unit="")
        case Action.ESCALATE:
            # Units summoned by the street stand down; the district dispatches afresh.
            changes.update(units={}, lead_unit="")
        case Action.ACCEPT_ESCALATION:
            changes["escalated"] = True
        case Action.START:
            unit = actor.unit
        case Action.RESOLVE:
            unit = actor.unit
            changes["resolved_at"] = now
        case Action.RATE:
            changes["rating"] = command.rating
        case Action.REOPEN:
            changes.update(units={}, lead_unit="", rating=None, resolved_at=None)
    updated = dataclasses.replace(ticket, **changes)
    entry = Entry(
        action=command.action,
        actor=actor.subject,
        time=now,
        from_state=ticket.state,
        to_state=updated.state,
        note=command.note or command.reason,
        unit=unit,
    )
    return updated, entry
