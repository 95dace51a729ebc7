"""Who hears what: routing rules from domain events to notices."""

from __future__ import annotations

from google.protobuf.message import Message

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1 import events_pb2 as blocks_events
from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2 as identity_events
from gov.points.v1 import events_pb2 as points_events
from gov.points.v1 import points_pb2
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2
from govkit.events import build_event, parse_event
from services.notifications.routing import Audience, route

BLOCK = "yuhu/wanlou/taoyuan/b07"
STREET = "yuhu/wanlou"


def event(subject: str, payload: Message) -> event_pb2.Event:
    return parse_event(build_event(subject, payload, actor="users/x", resource="r/1").envelope)


def ticket(**extra: object) -> tickets_events.TicketSummary:
    return tickets_events.TicketSummary(
        name="tickets/T1",
        category="categories/road",
        node=BLOCK,
        street=STREET,
        district="yuhu",
        reporter="users/rep",
        **extra,  # type: ignore[arg-type]
    )


def transition(action: str, t: tickets_events.TicketSummary | None = None, unit: str = "") -> event_pb2.Event:
    payload = tickets_events.TicketTransitioned(
        ticket=t or ticket(), entry=tickets_events.EntrySummary(unit=unit)
    )
    return event(f"tickets.v1.ticket.{action}", payload)


def test_the_reporter_hears_each_step_they_care_about() -> None:
    for action in ("accepted", "rejected", "merged", "dispatched", "resolved", "reopened"):
        notices = [n for n in route(transition(action)) if n.kind == f"ticket.{action}"]
        assert len(notices) == 1, action
        assert notices[0].audience == (Audience("person", "users/rep"),)
    for quiet in ("acknowledged", "started", "rated", "closed", "created"):
        assert [
            n for n in route(transition(quiet)) if n.kind.startswith("ticket.") and "users/rep" in str(n)
        ] == []


def test_resolved_carries_a_rating_link_and_goes_by_sms() -> None:
    (notice,) = route(transition("resolved"))
    assert notice.params["rating_link"] == "/tickets/T1/rating"
    assert notice.sms


def test_a_ticket_filed_by_a_service_account_tells_no_reporter() -> None:
    t = ticket()
    t.reporter = "serviceAccounts/open311"
    assert route(transition("accepted", t)) == []


def test_dispatch_tells_the_units_just_dispatched() -> None:
    units = [
        tickets_events.TicketUnitSummary(unit="units/a", status=tickets_pb2.UNIT_STATUS_DISPATCHED),
        tickets_events.TicketUnitSummary(unit="units/b", status=tickets_pb2.UNIT_STATUS_ACKNOWLEDGED),
    ]
    notices = {n.kind: n for n in route(transition("dispatched", ticket(units=units)))}
    assert notices["ticket.assigned"].audience == (Audience("unit", "units/a"),)
    assert notices["ticket.assigned"].audience[0].robot_owner == "units/a"


def test_overdue_goes_to_supervisor_and_street_and_late_units() -> None:
    units = [tickets_events.TicketUnitSummary(unit="units/a", status=tickets_pb2.UNIT_STATUS_DISPATCHED)]
    payload = tickets_events.TicketOverdue(
        ticket=ticket(units=units), kind=tickets_events.DEADLINE_KIND_ACKNOWLEDGE, escalated=True
    )
    notices = {n.kind: n for n in route(event("tickets.v1.ticket.overdue", payload))}
    overdue = notices["ticket.overdue"]
    assert overdue.urgent
    assert set(overdue.audience) == {
        Audience("block_staff", BLOCK, "supervisor"),
        Audience("node_role", STREET, "dispatcher"),
        Audience("node_role", STREET, "leader"),
        Audience("node_role", "yuhu", "dispatcher"),  # escalated to the district
        Audience("node_role", "yuhu", "leader"),
    }
    assert notices["ticket.unacknowledged"].audience == (Audience("unit", "units/a"),)


def test_resolve_overdue_without_escalation_stays_at_the_street() -> None:
    payload = tickets_events.TicketOverdue(ticket=ticket(), kind=tickets_events.DEADLINE_KIND_RESOLVE)
    (notice,) = route(event("tickets.v1.ticket.overdue", payload))
    assert Audience("node_role", "yuhu", "leader") not in notice.audience
    assert notice.params["deadline_kind"] == "resolve"


def test_escalation_tells_the_district_leader() -> None:
    (notice,) = route(transition("escalated"))
    assert notice.urgent and Audience("node_role", "yuhu", "leader") in notice.audience
    assert Audience("node_role", "yuhu", "dispatcher") in notice.audience


def test_staff_hear_of_their_assignment_and_removal() -> None:
    a = blocks_pb2.StaffAssignment(
        name=f"nodes/{BLOCK}/staff/s1", block=BLOCK, user="users/u1", role=blocks_pb2.STAFF_ROLE_SUPERVISOR
    )
    (assigned,) = route(event("blocks.v1.staff.assigned", blocks_events.StaffAssigned(assignment=a)))
    (removed,) = route(event("blocks.v1.staff.removed", blocks_events.StaffRemoved(assignment=a)))
    assert (assigned.kind, removed.kind) == ("staff.assigned", "staff.removed")
    assert assigned.audience == (Audience("person", "users/u1"),)
    assert assigned.params["role"] == "supervisor"


def test_points_awarded_and_penalty_with_appeal() -> None:
    def posted(kind: int, phase: int, owner: str = "users/r1") -> event_pb2.Event:
        facts = points_events.EntryFacts(
            entry="entries/e1", kind=kind, phase=phase, amount=5, owner=owner, award="awards/a1"
        )  # type: ignore[arg-type]
        return event("points.v1.entry.posted", points_events.EntryRecorded(entry=facts))

    (award,) = route(posted(points_pb2.ENTRY_KIND_AWARD, points_pb2.ENTRY_PHASE_POSTED))
    assert award.kind == "points.awarded" and award.params["points"] == "5"
    (penalty,) = route(posted(points_pb2.ENTRY_KIND_PENALTY, points_pb2.ENTRY_PHASE_POSTED))
    assert penalty.kind == "points.penalty" and penalty.params["appeal_link"] == "/points/awards/a1/appeal"
    # A pending award waits for the supervisor: nothing to tell yet.
    assert route(posted(points_pb2.ENTRY_KIND_AWARD, points_pb2.ENTRY_PHASE_PENDING)) == []
    # A household's points reach its residents.
    (household,) = route(posted(points_pb2.ENTRY_KIND_AWARD, points_pb2.ENTRY_PHASE_POST, "households/h1"))
    assert household.audience == (Audience("household", "households/h1"),)
    assert route(posted(points_pb2.ENTRY_KIND_REDEMPTION, points_pb2.ENTRY_PHASE_POSTED)) == []


def test_expiring_redemption_and_lists() -> None:
    (expiring,) = route(
        event("points.v1.points.expiring", points_events.PointsExpiring(owner="users/r1", points=3))
    )
    assert expiring.kind == "points.expiring"
    ready = points_events.RedemptionChanged(
        redemption=points_events.RedemptionFacts(redemption="redemptions/x", resident="users/r1")
    )
    (notice,) = route(event("points.v1.redemption.reserved", ready))
    assert notice.kind == "points.redemption_ready" and notice.sms
    listed = points_events.ListPublished(ranking="rankings/k", kind=points_pb2.RANKING_KIND_BLACK, node=BLOCK)
    (black,) = route(event("points.v1.list.published", listed))
    assert black.kind == "points.list_black" and black.audience == (Audience("ranking", "rankings/k"),)


def test_identity_security_notices() -> None:
    (reset,) = route(event("identity.v1.password.reset", identity_events.PasswordReset(user="users/u1")))
    assert reset.urgent and reset.audience == (Audience("person", "users/u1"),)
    assert route(event("identity.v1.user.created", identity_events.UserCreated())) == []


def test_backoff_doubles_up_to_the_cap_then_dead_letters() -> None:
    import datetime as dt

    from services.notifications.domain import RetryPolicy, State, mask_phone

    policy = RetryPolicy(max_attempts=4, base=dt.timedelta(seconds=2), cap=dt.timedelta(seconds=5))
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 5, 5]
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert policy.after_failure(3, now) == (State.FAILED, now + dt.timedelta(seconds=5))
    assert policy.after_failure(4, now) == (State.DEAD, now)
    assert mask_phone("+8613812345678") == "+86138****5678"
