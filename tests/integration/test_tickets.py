"""The ticket lifecycle against real identity, blocks and tickets processes, NATS and a database."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import nats
import pytest
import pytest_asyncio

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.crashpoint import CRASH_EXIT_CODE
from govkit.devstack import Stack
from govkit.events import parse_event, unpack_payload
from govkit.protobuf import timestamp
from tests.support.events import event_types, events_about
from tests.support.identity import IdentityClient, md
from tests.support.tickets import Person, World, make_category, make_world, new_ticket, seconds

TICKET_EVENTS = "tickets.v1.ticket.>"


@pytest_asyncio.fixture
async def world(blocks: BlocksServiceStub, tickets: TicketsServiceStub, identity: IdentityClient) -> World:
    return await make_world(blocks, tickets, identity)


async def ticket_events(nats_url: str, resource: str, settle: float = 0.5) -> list[str]:
    """Types of every event on the TICKETS stream about `resource`, in stream order."""
    return await event_types(nats_url, TICKET_EVENTS, resource, settle)


async def wait_events(nats_url: str, resource: str, count: int, within: float = 10) -> list[str]:
    found = await events_about(nats_url, TICKET_EVENTS, resource, count=count, within=within)
    return [event.type for _, event in found]


class Desk:
    """Acts on tickets as the people of a world."""

    def __init__(self, stub: TicketsServiceStub, world: World) -> None:
        self.stub = stub
        self.world = world

    def person(self, who: str) -> Person:
        return self.world.staff[who]

    async def report(self, who: str = "resident", *, request_id: str = "", **fields: object) -> pb.Ticket:
        return await self.stub.CreateTicket(
            pb.CreateTicketRequest(ticket=new_ticket(self.world, **fields), request_id=request_id),
            metadata=self.person(who).md,
        )

    async def act(self, who: str, ticket: pb.Ticket | str, action: int, **fields: object) -> pb.Ticket:
        name = ticket if isinstance(ticket, str) else ticket.name
        return await self.stub.TransitionTicket(
            pb.TransitionTicketRequest(name=name, action=action, **fields),  # type: ignore[arg-type]
            metadata=self.person(who).md,
        )

    async def timeline(self, ticket: pb.Ticket, who: str = "dispatcher") -> list[pb.TimelineEntry]:
        reply = await self.stub.ListTimelineEntries(
            pb.ListTimelineEntriesRequest(parent=ticket.name), metadata=self.person(who).md
        )
        return list(reply.entries)

    def unit(self, key: str) -> str:
        return f"units/{self.world.units[key]}"


async def assert_district_sums_agree(desk: Desk) -> pb.TicketStatistics:
    """A district's figures come from its monthly sums, a street's from its tickets: in a world
    whose district has one street, they must be the same, for whole months and for any period."""
    md_ = desk.person("district").md

    async def stats(node: str, **period: object) -> pb.TicketStatistics:
        return await desk.stub.GetTicketStatistics(
            pb.GetTicketStatisticsRequest(node=node, **period),  # type: ignore[arg-type]
            metadata=md_,
        )

    street = await stats(desk.world.street)
    assert await stats(desk.world.district) == street
    now = dt.datetime.now(dt.UTC)
    period = {
        "start_time": timestamp(now - dt.timedelta(days=400)),
        "end_time": timestamp(now + dt.timedelta(hours=1)),
    }
    assert await stats(desk.world.district, **period) == await stats(desk.world.street, **period) == street
    return street


@pytest.fixture
def desk(tickets: TicketsServiceStub, world: World) -> Desk:
    return Desk(tickets, world)


async def test_whistle_two_units_acknowledge_resolve_rate_close(desk: Desk, stack: Stack) -> None:
    t = await desk.report()
    assert t.state == pb.TICKET_STATE_SUBMITTED
    assert t.node == desk.world.blocks[0]
    assert t.street == desk.world.street
    assert t.suggested_unit == desk.unit("lead")  # routed to the street's rapid-response center
    assert t.acknowledge_deadline.seconds and t.resolve_deadline.seconds
    assert t.expected_resolve_time == t.resolve_deadline

    t = await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    assert t.state == pb.TICKET_STATE_ACCEPTED
    t = await desk.act(
        "dispatcher",
        t,
        pb.ACTION_DISPATCH,
        lead_unit=desk.unit("lead"),
        assisting_units=[desk.unit("assist")],
    )
    assert t.state == pb.TICKET_STATE_DISPATCHED
    assert [(u.unit, u.role, u.status) for u in t.units] == [
        (desk.unit("lead"), pb.UNIT_ROLE_LEAD, pb.UNIT_STATUS_DISPATCHED),
        (desk.unit("assist"), pb.UNIT_ROLE_ASSISTING, pb.UNIT_STATUS_DISPATCHED),
    ]
    # Work cannot start before the lead reports in.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await desk.act("unit:lead", t, pb.ACTION_START)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    t = await desk.act("unit:assist", t, pb.ACTION_ACKNOWLEDGE, note="民生中心报到")
    t = await desk.act("unit:lead", t, pb.ACTION_ACKNOWLEDGE)
    assert {u.status for u in t.units} == {pb.UNIT_STATUS_ACKNOWLEDGED}
    assert t.HasField("acknowledge_time")
    t = await desk.act("unit:lead", t, pb.ACTION_START)
    assert t.state == pb.TICKET_STATE_IN_PROGRESS
    t = await desk.act(
        "unit:lead",
        t,
        pb.ACTION_RESOLVE,
        note="维保单位已到场放人并修复",
        media_uris=["https://media.example.org/1.jpg"],
    )
    assert t.state == pb.TICKET_STATE_RESOLVED
    assert t.resolution == "维保单位已到场放人并修复"
    with pytest.raises(grpc.aio.AioRpcError) as unrated:
        await desk.act("dispatcher", t, pb.ACTION_CLOSE)
    assert unrated.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    t = await desk.act("resident", t, pb.ACTION_RATE, score=5, comment="很及时")
    assert (t.rating.score, t.rating.comment, t.rating.recorded_by) == (
        5,
        "很及时",
        desk.person("resident").name,
    )
    t = await desk.act("dispatcher", t, pb.ACTION_CLOSE)
    assert t.state == pb.TICKET_STATE_CLOSED
    figures = await assert_district_sums_agree(desk)
    assert (figures.total, figures.completed, figures.rated, figures.satisfied) == (1, 1, 1, 1)
    assert figures.HasField("median_time_to_acknowledge") and figures.HasField("p90_time_to_resolve")

    entries = await desk.timeline(t)
    assert [pb.Action.Name(e.action) for e in entries] == [
        "ACTION_SUBMIT",
        "ACTION_ACCEPT",
        "ACTION_DISPATCH",
        "ACTION_ACKNOWLEDGE",
        "ACTION_ACKNOWLEDGE",
        "ACTION_START",
        "ACTION_RESOLVE",
        "ACTION_RATE",
        "ACTION_CLOSE",
    ]
    assert entries[3].unit == desk.unit("assist") and entries[3].note == "民生中心报到"
    assert entries[2].details["assisting_units"] == desk.unit("assist")
    assert all(e.actor for e in entries)
    events = await wait_events(stack.nats_url, t.name, 9)
    assert events == [
        "tickets.v1.ticket.created",
        "tickets.v1.ticket.accepted",
        "tickets.v1.ticket.dispatched",
        "tickets.v1.ticket.acknowledged",
        "tickets.v1.ticket.acknowledged",
        "tickets.v1.ticket.started",
        "tickets.v1.ticket.resolved",
        "tickets.v1.ticket.rated",
        "tickets.v1.ticket.closed",
    ]


async def test_accepted_event_carries_what_points_needs(desk: Desk, stack: Stack) -> None:
    t = await desk.report()
    await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    nc = await nats.connect(stack.nats_url)
    try:
        sub = await nc.jetstream().subscribe("tickets.v1.ticket.accepted", ordered_consumer=True)
        while True:
            event = parse_event((await sub.next_msg(timeout=5)).data)
            if event.resource == t.name:
                break
    finally:
        await nc.close()
    payload = unpack_payload(event, events_pb2.TicketTransitioned)
    assert payload.ticket.reporter == desk.person("resident").name
    assert payload.ticket.category == t.category
    assert payload.entry.action == pb.ACTION_ACCEPT
    assert event.actor == desk.person("dispatcher").name


async def test_duplicate_is_flagged_then_merged_into_the_original(desk: Desk) -> None:
    original = await desk.report()
    duplicate = await desk.report("neighbour")  # same category, same spot, minutes later
    assert original.name in duplicate.possible_duplicates
    far = await desk.report(block=1)
    assert original.name not in far.possible_duplicates

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await desk.act("dispatcher", duplicate, pb.ACTION_MERGE, reason="重复")
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    merged = await desk.act(
        "dispatcher", duplicate, pb.ACTION_MERGE, reason="与先前工单重复", original=original.name
    )
    assert merged.state == pb.TICKET_STATE_MERGED
    assert merged.merged_into == original.name
    rejected = await desk.act("dispatcher", far, pb.ACTION_REJECT, reason="非本辖区事项")
    assert (rejected.state, rejected.reject_reason) == (pb.TICKET_STATE_REJECTED, "非本辖区事项")
    # Merged and rejected are final.
    with pytest.raises(grpc.aio.AioRpcError) as final:
        await desk.act("dispatcher", merged, pb.ACTION_ACCEPT)
    assert final.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_unit_returns_it_and_the_dispatcher_dispatches_again(desk: Desk) -> None:
    t = await desk.report()
    await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    t = await desk.act(
        "dispatcher",
        t,
        pb.ACTION_DISPATCH,
        lead_unit=desk.unit("other"),
        assisting_units=[desk.unit("assist")],
    )
    # An assisting unit returning leaves the ticket with the lead.
    t = await desk.act("unit:assist", t, pb.ACTION_RETURN, reason="不属于民生中心职责")
    assert t.state == pb.TICKET_STATE_DISPATCHED
    assert {u.unit: (u.status, u.reason) for u in t.units}[desk.unit("assist")] == (
        pb.UNIT_STATUS_RETURNED,
        "不属于民生中心职责",
    )
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await desk.act("unit:assist", t, pb.ACTION_ACKNOWLEDGE)
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await desk.act("unit:other", t, pb.ACTION_RETURN)
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The lead returning it sends it back to the dispatcher.
    t = await desk.act("unit:other", t, pb.ACTION_RETURN, reason="分派错误,应由快速处置中心处理")
    assert (t.state, list(t.units), t.lead_unit) == (pb.TICKET_STATE_ACCEPTED, [], "")
    # Without a lead_unit, dispatch goes to the category's routing.
    t = await desk.act("dispatcher", t, pb.ACTION_DISPATCH)
    assert t.lead_unit == desk.unit("lead")
    t = await desk.act("unit:lead", t, pb.ACTION_ACKNOWLEDGE)
    assert t.units[0].status == pb.UNIT_STATUS_ACKNOWLEDGED
    # A unit the ticket was not dispatched to cannot touch it.
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await desk.act("unit:other", t, pb.ACTION_START)
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    actions = [e.action for e in await desk.timeline(t)]
    assert actions.count(pb.ACTION_RETURN) == 2 and actions.count(pb.ACTION_DISPATCH) == 2


async def test_street_escalates_and_the_district_accepts_and_dispatches(desk: Desk, stack: Stack) -> None:
    t = await desk.report()
    await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await desk.act("dispatcher", t, pb.ACTION_ESCALATE)
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    t = await desk.act("dispatcher", t, pb.ACTION_ESCALATE, reason="涉及多部门,街道无法协调")
    assert t.state == pb.TICKET_STATE_ESCALATED
    # The street cannot accept its own escalation.
    with pytest.raises(grpc.aio.AioRpcError) as own:
        await desk.act("dispatcher", t, pb.ACTION_ACCEPT_ESCALATION)
    assert own.value.code() == grpc.StatusCode.PERMISSION_DENIED
    t = await desk.act("district", t, pb.ACTION_ACCEPT_ESCALATION, note="区里接手")
    assert (t.state, t.escalated) == (pb.TICKET_STATE_ACCEPTED, True)
    # Now the district's: the street dispatcher no longer dispatches it.
    with pytest.raises(grpc.aio.AioRpcError) as street:
        await desk.act("dispatcher", t, pb.ACTION_DISPATCH, lead_unit=desk.unit("lead"))
    assert street.value.code() == grpc.StatusCode.PERMISSION_DENIED
    t = await desk.act("district", t, pb.ACTION_DISPATCH, lead_unit=desk.unit("department"))
    t = await desk.act("unit:department", t, pb.ACTION_ACKNOWLEDGE)
    assert t.lead_unit == desk.unit("department")
    events = await wait_events(stack.nats_url, t.name, 6)
    assert "tickets.v1.ticket.escalated" in events and "tickets.v1.ticket.escalation_accepted" in events


async def test_supervisor_reopens_and_reporter_reopens_only_when_dissatisfied(desk: Desk) -> None:
    async def resolved(who: str = "resident") -> pb.Ticket:
        t = await desk.report(who)
        await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
        await desk.act("dispatcher", t, pb.ACTION_DISPATCH)
        await desk.act("unit:lead", t, pb.ACTION_ACKNOWLEDGE)
        await desk.act("unit:lead", t, pb.ACTION_START)
        return await desk.act("unit:lead", t, pb.ACTION_RESOLVE, note="已处理")

    t = await resolved()
    t = await desk.act("governor", t, pb.ACTION_RATE, score=5, comment="电话回访:满意")  # recorded by phone
    assert t.rating.recorded_by == desk.person("governor").name
    t = await desk.act("dispatcher", t, pb.ACTION_CLOSE)
    # A satisfied reporter cannot reopen; the block's supervisor can.
    with pytest.raises(grpc.aio.AioRpcError) as satisfied:
        await desk.act("resident", t, pb.ACTION_REOPEN, reason="again")
    assert satisfied.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    t = await desk.act("supervisor", t, pb.ACTION_REOPEN, reason="督查发现问题未彻底解决")
    assert (t.state, t.HasField("rating"), list(t.units)) == (pb.TICKET_STATE_ACCEPTED, False, [])
    assert not t.HasField("resolve_time") and not t.HasField("close_time")

    unhappy = await resolved()
    unhappy = await desk.act("resident", unhappy, pb.ACTION_RATE, score=2, comment="没修好")
    unhappy = await desk.act("resident", unhappy, pb.ACTION_REOPEN, reason="电梯又坏了")
    assert unhappy.state == pb.TICKET_STATE_ACCEPTED
    # Someone else's ticket is not theirs to reopen.
    other = await resolved("neighbour")
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await desk.act("resident", other, pb.ACTION_REOPEN, reason="x")
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    figures = await assert_district_sums_agree(desk)  # reopening takes completions back out
    assert (figures.total, figures.completed, figures.rated) == (3, 1, 0)


async def test_refused_transitions_change_nothing(desk: Desk, tickets: TicketsServiceStub) -> None:
    t = await desk.report()
    before = await desk.timeline(t)
    for who, action, code in (
        ("dispatcher", pb.ACTION_START, grpc.StatusCode.PERMISSION_DENIED),  # not unit staff
        ("dispatcher", pb.ACTION_CLOSE, grpc.StatusCode.FAILED_PRECONDITION),  # submitted, not resolved
        ("outsider", pb.ACTION_ACCEPT, grpc.StatusCode.PERMISSION_DENIED),  # another street's dispatcher
        ("resident", pb.ACTION_ACCEPT, grpc.StatusCode.PERMISSION_DENIED),
        ("unit:lead", pb.ACTION_ACKNOWLEDGE, grpc.StatusCode.PERMISSION_DENIED),  # not dispatched to it
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await desk.act(who, t, action)
        assert refused.value.code() == code, (who, pb.Action.Name(action))
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await desk.act("dispatcher", t, pb.ACTION_SUBMIT)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await desk.act("dispatcher", "tickets/00000000-0000-0000-0000-000000000000", pb.ACTION_ACCEPT)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    after = await tickets.GetTicket(pb.GetTicketRequest(name=t.name), metadata=desk.person("dispatcher").md)
    assert after.state == pb.TICKET_STATE_SUBMITTED and after.update_time == t.update_time
    assert len(await desk.timeline(t)) == len(before) == 1


async def test_retried_create_returns_the_same_ticket(desk: Desk, tickets: TicketsServiceStub) -> None:
    first = await desk.report(request_id="app-42-retry")
    again = await desk.report(request_id="app-42-retry")
    assert again.name == first.name
    racing = await asyncio.gather(*(desk.report(request_id="app-43-race") for _ in range(5)))
    assert len({t.name for t in racing}) == 1
    # The same id from another caller is their own request.
    other = await desk.report("neighbour", request_id="app-42-retry")
    assert other.name != first.name


async def test_bad_reports_are_refused_with_the_field_named(desk: Desk, tickets: TicketsServiceStub) -> None:
    resident = desk.person("resident").md

    async def refused(ticket: pb.Ticket) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await tickets.CreateTicket(pb.CreateTicketRequest(ticket=ticket), metadata=resident)
        return info.value

    missing_attr = new_ticket(desk.world)
    del missing_attr.attributes[:]
    err = await refused(missing_attr)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "building" in err.details()
    bad_option = new_ticket(desk.world)
    bad_option.attributes.append(pb.TicketAttribute(code="trapped", values=["maybe"]))
    assert (await refused(bad_option)).code() == grpc.StatusCode.INVALID_ARGUMENT
    nowhere = new_ticket(desk.world)
    nowhere.location.latitude = 10.0
    err = await refused(nowhere)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "location" in err.details()
    no_category = new_ticket(desk.world)
    no_category.category = "categories/no-such-thing"
    assert (await refused(no_category)).code() == grpc.StatusCode.INVALID_ARGUMENT
    address_only = new_ticket(desk.world)
    address_only.location.has_point = False
    assert "ticket.node" in (await refused(address_only)).details()
    address_only.node = f"{desk.world.street}/no-such-community"
    err = await refused(address_only)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "ticket.node" in err.details()
    address_only.node = desk.world.street
    address_only.description = "路灯不亮\n已经两天了"  # free text keeps its line breaks
    t = await tickets.CreateTicket(pb.CreateTicketRequest(ticket=address_only), metadata=resident)
    assert (t.node, t.description) == (desk.world.street, "路灯不亮\n已经两天了")
    # Patrol reports come from staff only.
    patrol = new_ticket(desk.world, source=pb.TICKET_SOURCE_PATROL)
    assert (await refused(patrol)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await desk.report("governor", source=pb.TICKET_SOURCE_PATROL)).source == pb.TICKET_SOURCE_PATROL


async def test_each_caller_sees_what_their_scope_covers(desk: Desk, tickets: TicketsServiceStub) -> None:
    mine = await desk.report()
    theirs = await desk.report("neighbour", block=1)
    await desk.act("dispatcher", mine, pb.ACTION_ACCEPT)
    await desk.act("dispatcher", mine, pb.ACTION_DISPATCH, lead_unit=desk.unit("lead"))

    async def names(who: str, **filters: object) -> set[str]:
        reply = await tickets.ListTickets(
            pb.ListTicketsRequest(**{"node": desk.world.district, "page_size": 200, **filters}),  # type: ignore[arg-type]
            metadata=desk.person(who).md,
        )
        return {t.name for t in reply.tickets}

    assert await names("resident") == {mine.name}
    assert await names("neighbour") == {theirs.name}
    assert await names("governor") == {mine.name}  # block b01's governor
    assert await names("dispatcher") >= {mine.name, theirs.name}
    assert await names("district") >= {mine.name, theirs.name}
    assert await names("unit:lead") == {mine.name}
    assert await names("unit:assist") == set()
    assert await names("outsider") == set()
    assert await names("dispatcher", state=pb.TICKET_STATE_DISPATCHED) == {mine.name}
    assert await names("dispatcher", unit=desk.unit("lead")) == {mine.name}
    assert await names("dispatcher", node=desk.world.blocks[1]) == {theirs.name}
    with pytest.raises(grpc.aio.AioRpcError) as outside:
        await tickets.GetTicket(pb.GetTicketRequest(name=mine.name), metadata=desk.person("neighbour").md)
    assert outside.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_pages_walk_every_ticket_once(desk: Desk, tickets: TicketsServiceStub) -> None:
    created = {(await desk.report()).name for _ in range(5)}
    seen: list[str] = []
    token = ""
    while True:
        reply = await tickets.ListTickets(
            pb.ListTicketsRequest(page_size=2, page_token=token), metadata=desk.person("resident").md
        )
        seen += [t.name for t in reply.tickets]
        token = reply.next_page_token
        if not token:
            break
    assert set(seen) == created and len(seen) == len(created)
    with pytest.raises(grpc.aio.AioRpcError) as changed:
        await tickets.ListTickets(
            pb.ListTicketsRequest(page_size=2, page_token=reply.next_page_token or "x", state=2),
            metadata=desk.person("resident").md,
        )
    assert changed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_page_shows_each_ticket_once_newest_first_with_the_units_a_ticket_shows(
    desk: Desk, tickets: TicketsServiceStub
) -> None:
    """A listed ticket carries its units as GetTicket does: a ticket with two units is one item, one
    with none is there too, and paging does not change the items or their order."""
    plain = await desk.report()
    whistled = await desk.report()
    await desk.act("dispatcher", whistled, pb.ACTION_ACCEPT)
    await desk.act(
        "dispatcher",
        whistled,
        pb.ACTION_DISPATCH,
        lead_unit=desk.unit("lead"),
        assisting_units=[desk.unit("assist")],
    )
    newest = await desk.report()
    md = desk.person("dispatcher").md
    listed: list[pb.Ticket] = []
    token = ""
    while True:  # pages of two, then one page of 200 below
        reply = await tickets.ListTickets(pb.ListTicketsRequest(page_size=2, page_token=token), metadata=md)
        listed += reply.tickets
        token = reply.next_page_token
        if not token:
            break
    names = [t.name for t in listed]
    assert len(names) == len(set(names))
    whole = await tickets.ListTickets(pb.ListTicketsRequest(page_size=200), metadata=md)
    assert list(whole.tickets) == listed  # one page, or pages of two: the same tickets
    ours = [t for t in listed if t.name in {plain.name, whistled.name, newest.name}]
    assert [t.name for t in ours] == [newest.name, whistled.name, plain.name]
    assert [len(t.units) for t in ours] == [0, 2, 0]
    for item in ours:
        assert item == await tickets.GetTicket(pb.GetTicketRequest(name=item.name), metadata=md)


async def test_dispute_resolves_with_a_mediation_outcome_and_statistics_add_up(
    desk: Desk, tickets: TicketsServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    dispute = await make_category(tickets, identity.admin_token, kind=pb.TICKET_KIND_DISPUTE)
    t = await desk.report(category=f"categories/{dispute}")
    assert t.kind == pb.TICKET_KIND_DISPUTE
    await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    await desk.act("dispatcher", t, pb.ACTION_DISPATCH)
    await desk.act("unit:lead", t, pb.ACTION_ACKNOWLEDGE)
    await desk.act("unit:lead", t, pb.ACTION_START)
    with pytest.raises(grpc.aio.AioRpcError) as no_outcome:
        await desk.act("unit:lead", t, pb.ACTION_RESOLVE, note="已调解")
    assert no_outcome.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    t = await desk.act(
        "unit:lead", t, pb.ACTION_RESOLVE, note="双方达成协议", mediation_outcome=pb.MEDIATION_OUTCOME_SETTLED
    )
    assert t.mediation_outcome == pb.MEDIATION_OUTCOME_SETTLED
    await desk.act("resident", t, pb.ACTION_RATE, score=4)
    open_one = await desk.report()
    rejected = await desk.report()
    await desk.act("dispatcher", rejected, pb.ACTION_REJECT, reason="无效")

    stats = await tickets.GetTicketStatistics(
        pb.GetTicketStatisticsRequest(node=desk.world.street), metadata=desk.person("dispatcher").md
    )
    counts = {s.state: s.count for s in stats.by_state}
    assert stats.total == 3
    assert counts[pb.TICKET_STATE_RESOLVED] == 1 and counts[pb.TICKET_STATE_SUBMITTED] == 1
    assert counts[pb.TICKET_STATE_REJECTED] == 1
    assert stats.completed == 1 and stats.completion_rate == pytest.approx(1 / 2)
    assert stats.completed_on_time == 1 and stats.completed_same_day in (0, 1)
    assert (stats.rated, stats.satisfied, stats.satisfaction_rate) == (1, 1, 1.0)
    assert (stats.disputes_mediated, stats.disputes_settled, stats.mediation_success_rate) == (1, 1, 1.0)
    assert stats.median_time_to_acknowledge.seconds >= 0 and stats.HasField("median_time_to_resolve")
    by_category = await tickets.GetTicketStatistics(
        pb.GetTicketStatisticsRequest(node=desk.world.street, category=f"categories/{dispute}"),
        metadata=desk.person("dispatcher").md,
    )
    assert by_category.total == 1
    with pytest.raises(grpc.aio.AioRpcError) as outside:
        await tickets.GetTicketStatistics(
            pb.GetTicketStatisticsRequest(node=desk.world.street), metadata=desk.person("outsider").md
        )
    assert outside.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert open_one.state == pb.TICKET_STATE_SUBMITTED
    before = await assert_district_sums_agree(desk)
    assert before.total == 3
    # Recomputing the sums from the tickets (the ops command) gives what the changes added up to.
    stack.run_command("tickets", "rebuild-statistics", stack.service_envs["tickets"])
    assert await assert_district_sums_agree(desk) == before


async def test_overdue_is_announced_once_and_the_rule_escalates(
    desk: Desk, tickets: TicketsServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    """Two tickets replicas sweep the same database: each breach is announced exactly once."""
    second = stack.start_service("tickets", stack.service_envs["tickets"], name="tickets-2")
    try:
        fast = await make_category(
            tickets,
            identity.admin_token,
            ack=seconds(1),
            resolve=seconds(2),
            clock=pb.SLA_CLOCK_CALENDAR,
            escalate=True,
        )
        created = [await desk.report(category=f"categories/{fast}") for _ in range(3)]
        await asyncio.sleep(4)  # both deadlines pass; both replicas sweep every 0.5 s
        for t in created:
            events = await wait_events(stack.nats_url, t.name, 4)
            assert events.count("tickets.v1.ticket.overdue") == 2, events  # acknowledge + resolve, once each
            assert events.count("tickets.v1.ticket.escalated") == 1, events
            now = await tickets.GetTicket(
                pb.GetTicketRequest(name=t.name), metadata=desk.person("dispatcher").md
            )
            assert now.acknowledge_overdue and now.resolve_overdue
            assert now.state == pb.TICKET_STATE_ESCALATED
        assert (await assert_district_sums_agree(desk)).overdue == 3
        listed = await tickets.ListTickets(
            pb.ListTicketsRequest(overdue_only=True, category=f"categories/{fast}"),
            metadata=desk.person("dispatcher").md,
        )
        assert {t.name for t in listed.tickets} == {t.name for t in created}
    finally:
        stack.stop_proc(second)


async def test_working_hour_deadlines_follow_the_loaded_calendar(
    tickets: TicketsServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    year = await tickets.SetCalendarYear(
        pb.SetCalendarYearRequest(
            calendar_year=pb.CalendarYear(
                year=2031,
                days=[
                    pb.CalendarDay(date="2031-01-01", kind=pb.DAY_KIND_HOLIDAY, display_name="元旦"),
                    pb.CalendarDay(date="2031-01-04", kind=pb.DAY_KIND_WORKDAY, display_name="调休"),
                ],
            )
        ),
        metadata=admin,
    )
    assert [d.date for d in year.days] == ["2031-01-01", "2031-01-04"]
    got = await tickets.GetCalendarYear(pb.GetCalendarYearRequest(name="calendarYears/2031"), metadata=admin)
    assert got.days[1].kind == pb.DAY_KIND_WORKDAY
    with pytest.raises(grpc.aio.AioRpcError) as weekday:
        await tickets.SetCalendarYear(
            pb.SetCalendarYearRequest(
                calendar_year=pb.CalendarYear(
                    year=2031, days=[pb.CalendarDay(date="2031-01-06", kind=pb.DAY_KIND_WORKDAY)]
                )
            ),
            metadata=admin,
        )
    assert weekday.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("point", ["tickets.transition.before_commit", "tickets.transition.after_commit"])
async def test_killed_mid_transition_loses_no_committed_transition_and_no_event(
    desk: Desk, tickets: TicketsServiceStub, stack: Stack, point: str
) -> None:
    """A replica dies (os._exit, like kill -9) inside a transition: either all of it stays or none."""
    t = await desk.report()
    doomed = stack.start_service(
        "tickets", {**stack.service_envs["tickets"], "GOV_CRASHPOINT": point}, name="tickets-doomed"
    )
    try:
        async with grpc.aio.insecure_channel(stack.addrs["tickets-doomed"]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await TicketsServiceStub(channel).TransitionTicket(
                    pb.TransitionTicketRequest(name=t.name, action=pb.ACTION_ACCEPT),
                    metadata=desk.person("dispatcher").md,
                )
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert doomed.popen.wait(10) == CRASH_EXIT_CODE
    finally:
        stack.stop_proc(doomed)
    now = await tickets.GetTicket(pb.GetTicketRequest(name=t.name), metadata=desk.person("dispatcher").md)
    entries = [e.action for e in await desk.timeline(t)]
    # The surviving replica's relay publishes whatever the dead one committed.
    events = await wait_events(stack.nats_url, t.name, 2, within=5)
    if point.endswith("before_commit"):
        assert now.state == pb.TICKET_STATE_SUBMITTED
        assert entries == [pb.ACTION_SUBMIT]
        assert events == ["tickets.v1.ticket.created"]
        # Nothing half-done stands in the way of doing it again.
        assert (await desk.act("dispatcher", t, pb.ACTION_ACCEPT)).state == pb.TICKET_STATE_ACCEPTED
    else:
        assert now.state == pb.TICKET_STATE_ACCEPTED
        assert entries == [pb.ACTION_SUBMIT, pb.ACTION_ACCEPT]
        assert events == ["tickets.v1.ticket.created", "tickets.v1.ticket.accepted"]


async def test_the_hotline_files_for_a_caller_and_follows_its_own_reports(
    desk: Desk, tickets: TicketsServiceStub, identity: IdentityClient
) -> None:
    created = await identity.make_service_account("12345 热线")
    hotline = md(await identity.service_token(created))
    ticket = new_ticket(
        desk.world,
        source=pb.TICKET_SOURCE_HOTLINE,
        contact=pb.Contact(display_name="王女士", phone="138-0731-2345"),
    )
    t = await tickets.CreateTicket(
        pb.CreateTicketRequest(ticket=ticket, request_id="12345-20261123-0042"), metadata=hotline
    )
    assert t.reporter == created.service_account.name
    assert (t.source, t.contact.display_name, t.contact.phone) == (
        pb.TICKET_SOURCE_HOTLINE,
        "王女士",
        "+8613807312345",
    )
    # The dispatcher sees who to call back; the hotline follows the ticket it filed, and only that.
    seen = await tickets.GetTicket(pb.GetTicketRequest(name=t.name), metadata=desk.person("dispatcher").md)
    assert seen.contact.phone == "+8613807312345"
    listed = await tickets.ListTickets(pb.ListTicketsRequest(), metadata=hotline)
    assert [x.name for x in listed.tickets] == [t.name]
    # A resident cannot pose as the hotline.
    with pytest.raises(grpc.aio.AioRpcError) as posing:
        await desk.report(source=pb.TICKET_SOURCE_HOTLINE)
    assert posing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The hotline records the caller's rating once the work is done.
    await desk.act("dispatcher", t, pb.ACTION_ACCEPT)
    await desk.act("dispatcher", t, pb.ACTION_DISPATCH)
    await desk.act("unit:lead", t, pb.ACTION_ACKNOWLEDGE)
    await desk.act("unit:lead", t, pb.ACTION_START)
    await desk.act("unit:lead", t, pb.ACTION_RESOLVE, note="已修复")
    rated = await tickets.TransitionTicket(
        pb.TransitionTicketRequest(name=t.name, action=pb.ACTION_RATE, score=4, comment="回访满意"),
        metadata=hotline,
    )
    assert rated.rating.recorded_by == created.service_account.name
