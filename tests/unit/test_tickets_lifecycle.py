"""Every path of the work-order lifecycle, with who may take each step."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from govkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.tickets.lifecycle import Action, Actor, Command, State, Ticket, UnitStatus, apply

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
BLOCK = "yuhu/wanlou/yaowan/b01"
REPORTER = "users/resident-1"
DISPATCHER = Actor("users/d1", "dispatcher", "yuhu/wanlou")
OTHER_DISPATCHER = Actor("users/d2", "dispatcher", "yuhu/hetang")
DISTRICT = Actor("users/d0", "dispatcher", "yuhu")
CITY_MANAGEMENT = Actor("users/u1", "unit_staff", unit="city-management")
RAPID_RESPONSE = Actor("users/u2", "unit_staff", unit="rapid-response")
SUPERVISOR = Actor("users/s1", "supervisor", BLOCK)
RESIDENT = Actor(REPORTER, "resident", BLOCK)


def new_ticket() -> Ticket:
    return Ticket(
        id="t1", state=State.SUBMITTED, node=BLOCK, street="yuhu/wanlou", district="yuhu", reporter=REPORTER
    )


def run(ticket: Ticket, *steps: tuple[Actor, Command]) -> tuple[Ticket, list]:
    timeline = []
    for actor, command in steps:
        ticket, entry = apply(ticket, command, actor, NOW)
        timeline.append(entry)
    return ticket, timeline


WHISTLE = Command(Action.DISPATCH, lead_unit="city-management", assisting_units=("rapid-response",))


def test_accept_whistle_two_units_report_in_resolve_rate_close() -> None:
    ticket, timeline = run(
        new_ticket(),
        (DISPATCHER, Command(Action.ACCEPT)),
        (DISPATCHER, WHISTLE),
        (CITY_MANAGEMENT, Command(Action.ACKNOWLEDGE)),
        (RAPID_RESPONSE, Command(Action.ACKNOWLEDGE)),
        (CITY_MANAGEMENT, Command(Action.START)),
        (CITY_MANAGEMENT, Command(Action.RESOLVE, note="路灯已修复")),
        (RESIDENT, Command(Action.RATE, rating=5)),
        (DISPATCHER, Command(Action.CLOSE)),
    )
    assert ticket.state == State.CLOSED and ticket.rating == 5
    assert ticket.units == {
        "city-management": UnitStatus.ACKNOWLEDGED,
        "rapid-response": UnitStatus.ACKNOWLEDGED,
    }
    assert [e.to_state for e in timeline] == [
        State.ACCEPTED,
        State.DISPATCHED,
        State.DISPATCHED,
        State.DISPATCHED,
        State.IN_PROGRESS,
        State.RESOLVED,
        State.RESOLVED,
        State.CLOSED,
    ]
    assert timeline[2].unit == "city-management" and timeline[5].note == "路灯已修复"


def test_reject_as_duplicate_merges_with_a_reason() -> None:
    with pytest.raises(InvalidArgument):
        apply(new_ticket(), Command(Action.MERGE), DISPATCHER, NOW)
    merged, entry = apply(new_ticket(), Command(Action.MERGE, reason="duplicate of t0"), DISPATCHER, NOW)
    assert merged.state == State.MERGED and entry.note == "duplicate of t0"


def test_a_unit_returns_it_and_the_dispatcher_dispatches_again() -> None:
    ticket, _ = run(new_ticket(), (DISPATCHER, Command(Action.ACCEPT)), (DISPATCHER, WHISTLE))
    returned, entry = apply(ticket, Command(Action.RETURN, reason="not our remit"), CITY_MANAGEMENT, NOW)
    assert returned.state == State.ACCEPTED and returned.units == {} and entry.from_state == State.DISPATCHED
    again, _ = apply(returned, Command(Action.DISPATCH, lead_unit="rapid-response"), DISPATCHER, NOW)
    assert again.lead_unit == "rapid-response" and again.state == State.DISPATCHED
    # An assisting unit returning does not take the ticket away from the lead.
    ticket, _ = run(new_ticket(), (DISPATCHER, Command(Action.ACCEPT)), (DISPATCHER, WHISTLE))
    assisted, _ = apply(ticket, Command(Action.RETURN, reason="no"), RAPID_RESPONSE, NOW)
    assert assisted.state == State.DISPATCHED and assisted.units["rapid-response"] == UnitStatus.RETURNED


def test_escalate_to_the_district_which_accepts_and_dispatches() -> None:
    ticket, _ = run(
        new_ticket(),
        (DISPATCHER, Command(Action.ACCEPT)),
        (DISPATCHER, Command(Action.ESCALATE, reason="needs the district's enforcement team")),
    )
    assert ticket.state == State.ESCALATED
    with pytest.raises(PermissionDenied):
        apply(ticket, Command(Action.ACCEPT_ESCALATION), DISPATCHER, NOW)  # the street cannot accept its own
    ticket, _ = run(ticket, (DISTRICT, Command(Action.ACCEPT_ESCALATION)), (DISTRICT, WHISTLE))
    assert ticket.escalated and ticket.state == State.DISPATCHED and ticket.owner_scope == "yuhu"


def test_reopen_by_the_supervisor_or_a_dissatisfied_reporter_in_time() -> None:
    resolved, _ = run(
        new_ticket(),
        (DISPATCHER, Command(Action.ACCEPT)),
        (DISPATCHER, WHISTLE),
        (CITY_MANAGEMENT, Command(Action.ACKNOWLEDGE)),
        (CITY_MANAGEMENT, Command(Action.START)),
        (CITY_MANAGEMENT, Command(Action.RESOLVE, note="done")),
    )
    reopened, _ = apply(resolved, Command(Action.REOPEN, reason="lamp still dark"), SUPERVISOR, NOW)
    assert reopened.state == State.ACCEPTED and reopened.units == {} and reopened.resolved_at is None
    unhappy, _ = apply(resolved, Command(Action.RATE, rating=2), RESIDENT, NOW)
    assert (
        apply(unhappy, Command(Action.REOPEN, reason="not fixed"), RESIDENT, NOW)[0].state == State.ACCEPTED
    )
    happy, _ = apply(resolved, Command(Action.RATE, rating=5), RESIDENT, NOW)
    with pytest.raises(FailedPrecondition):
        apply(happy, Command(Action.REOPEN, reason="changed my mind"), RESIDENT, NOW)
    with pytest.raises(FailedPrecondition):
        apply(unhappy, Command(Action.REOPEN, reason="late"), RESIDENT, NOW + dt.timedelta(days=8))


@pytest.mark.parametrize(
    ("actor", "command"),
    [
        (OTHER_DISPATCHER, Command(Action.ACCEPT)),  # another street
        (RESIDENT, Command(Action.ACCEPT)),
        (CITY_MANAGEMENT, Command(Action.ACCEPT)),
    ],
)
def test_outside_scope_is_refused(actor: Actor, command: Command) -> None:
    with pytest.raises(PermissionDenied):
        apply(new_ticket(), command, actor, NOW)


def test_illegal_transitions_are_refused_and_change_nothing() -> None:
    ticket = new_ticket()
    # Steps the dispatcher may take, but not on a ticket nobody has accepted yet.
    for command in (WHISTLE, Command(Action.CLOSE)):
        with pytest.raises(FailedPrecondition, match="submitted"):
            apply(ticket, command, DISPATCHER, NOW)
    # Steps that are not the dispatcher's at all.
    with pytest.raises(PermissionDenied):
        apply(ticket, Command(Action.START), DISPATCHER, NOW)
    assert ticket == new_ticket()  # tickets are immutable values
    dispatched, _ = run(ticket, (DISPATCHER, Command(Action.ACCEPT)), (DISPATCHER, WHISTLE))
    with pytest.raises(FailedPrecondition, match="acknowledge"):
        apply(dispatched, Command(Action.START), CITY_MANAGEMENT, NOW)  # must report in first
    with pytest.raises(PermissionDenied):
        apply(dispatched, Command(Action.ACKNOWLEDGE), Actor("users/u9", "unit_staff", unit="police"), NOW)
    acked, _ = apply(dispatched, Command(Action.ACKNOWLEDGE), RAPID_RESPONSE, NOW)
    with pytest.raises(FailedPrecondition, match="already"):
        apply(acked, Command(Action.ACKNOWLEDGE), RAPID_RESPONSE, NOW)
    with pytest.raises(PermissionDenied, match="lead"):
        apply(acked, Command(Action.START), RAPID_RESPONSE, NOW)
    with pytest.raises(InvalidArgument):
        apply(ticket, Command(Action.RATE, rating=9), RESIDENT, NOW)


def test_the_system_only_escalates_and_an_escalated_ticket_goes_no_higher() -> None:
    system = Actor("system", "system")
    escalated, entry = apply(new_ticket(), Command(Action.ESCALATE, reason="deadline passed"), system, NOW)
    assert (escalated.state, entry.actor) == (State.ESCALATED, "system")
    with pytest.raises(PermissionDenied):
        apply(new_ticket(), Command(Action.ACCEPT), system, NOW)
    district_owned = dataclasses.replace(new_ticket(), state=State.ACCEPTED, escalated=True)
    with pytest.raises(FailedPrecondition, match="already the district"):
        apply(district_owned, Command(Action.ESCALATE, reason="x"), Actor("users/d", "leader", "yuhu"), NOW)
