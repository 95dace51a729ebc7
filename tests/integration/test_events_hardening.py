"""Order-safe consumers and events without contact data.

The first tests drive identity's event handlers directly, against a real migrated database on
each backend, in the interleavings a redelivery produces (a failed `assigned` retried after the
`removed` that followed it; moves overtaking each other). The others read real events off the
stream after real calls: what they carry, and that every state change announces itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from sqlalchemy import select

from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1 import events_pb2 as blocks_events
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2 as identity_events
from gov.identity.v1 import identity_pb2 as ipb
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2 as tpb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit import migrations, treemoves
from govkit.db import Database, utcnow
from govkit.devstack import Stack
from govkit.events import build_event, parse_event, unpack_payload
from services.identity import node_moves, staff_sync
from services.identity.models import RoleBinding, StaffAssignment, User
from tests.support.blocks import make_tree
from tests.support.databases import Databases
from tests.support.events import events_about
from tests.support.identity import PASSWORD, IdentityClient, md, random_phone
from tests.support.tickets import make_world, new_ticket

REPO = Path(__file__).resolve().parents[2]


class Failed(Exception):
    """Stands for whatever made a handler's transaction fail: it rolled back, nothing applied."""


# ---------------------------------------------------------------------------- handlers, real database


@pytest_asyncio.fixture
async def identity_db(databases: Databases) -> AsyncIterator[Database]:
    url = databases.url("identity")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/identity/migrations", url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.close()


async def _user(db: Database) -> str:
    user_id = str(uuid.uuid4())
    async with db.transaction() as session:
        session.add(
            User(
                id=user_id,
                phone=random_phone(),
                username=None,
                display_name="网格员",
                scope="d1",
                state="active",
                password_hash="-",
                create_time=utcnow(),
                update_time=utcnow(),
            )
        )
    return user_id


def _staff_event(
    verb: str, user_id: str, block: str, *, assignment: str = "", tree_version: int = 0
) -> event_pb2.Event:
    row = bpb.StaffAssignment(
        name=f"nodes/{block}/staff/{assignment or uuid.uuid4()}",
        block=block,
        user=f"users/{user_id}",
        role=bpb.STAFF_ROLE_GOVERNOR,
    )
    payload = (
        blocks_events.StaffAssigned(assignment=row, tree_version=tree_version)
        if verb == "assigned"
        else blocks_events.StaffRemoved(assignment=row, tree_version=tree_version)
    )
    new = build_event(f"blocks.v1.staff.{verb}", payload, actor="users/x", resource=row.name)
    return parse_event(new.envelope)


def _move_event(seq: int, previous: str, path: str) -> event_pb2.Event:
    code = path.rsplit("/", 1)[1]
    parent = path.rsplit("/", 1)[0]
    node = bpb.Node(name=f"nodes/{path}", path=path, code=code, parent=parent)
    payload = blocks_events.NodeChanged(
        node=node, changed_fields=["parent"], previous_path=previous, tree_version=seq
    )
    return parse_event(build_event("blocks.v1.node.changed", payload, actor="users/x", resource="n").envelope)


async def _deliver(db: Database, handler, event: event_pb2.Event, *, fail: bool = False) -> None:  # type: ignore[no-untyped-def]
    """One delivery: the handler in its own transaction; `fail` makes it fail after the handler ran."""
    async with db.transaction() as session:
        await handler(session, event)
        if fail:
            raise Failed


async def _bindings(db: Database, user_id: str) -> list[tuple[str, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(RoleBinding.role, RoleBinding.scope).where(RoleBinding.principal == f"users/{user_id}")
        )
        return sorted((role, scope) for role, scope in rows)


async def test_a_retried_assignment_does_not_restore_a_removed_governor(identity_db: Database) -> None:
    user_id = await _user(identity_db)
    block = "d1/s1/c1/b1"
    assignment = str(uuid.uuid4())
    assigned = _staff_event("assigned", user_id, block, assignment=assignment)
    removed = _staff_event("removed", user_id, block, assignment=assignment)
    # `assigned` fails once and goes back to the stream with a delay ...
    with pytest.raises(Failed):
        await _deliver(identity_db, staff_sync.apply, assigned, fail=True)
    assert await _bindings(identity_db, user_id) == []
    # ... `removed` overtakes it and is applied ...
    await _deliver(identity_db, staff_sync.apply, removed)
    # ... and the retried `assigned` grants nothing: the assignment is known to be over.
    await _deliver(identity_db, staff_sync.apply, assigned)
    assert await _bindings(identity_db, user_id) == []
    async with identity_db.sessions() as session:
        record = await session.get(StaffAssignment, assignment)
        assert record is not None and not record.active


async def test_a_late_removal_of_an_old_assignment_keeps_the_new_one(identity_db: Database) -> None:
    user_id = await _user(identity_db)
    block = "d1/s1/c1/b2"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    # Removed, then assigned again (a new assignment); the removal of the first is retried last.
    await _deliver(identity_db, staff_sync.apply, _staff_event("assigned", user_id, block, assignment=first))
    removed_first = _staff_event("removed", user_id, block, assignment=first)
    with pytest.raises(Failed):
        await _deliver(identity_db, staff_sync.apply, removed_first, fail=True)
    await _deliver(identity_db, staff_sync.apply, _staff_event("assigned", user_id, block, assignment=second))
    await _deliver(identity_db, staff_sync.apply, removed_first)
    assert await _bindings(identity_db, user_id) == [("governor", block)]
    # A redelivered `assigned` of the live assignment changes nothing; its removal ends the role.
    await _deliver(identity_db, staff_sync.apply, _staff_event("assigned", user_id, block, assignment=second))
    assert await _bindings(identity_db, user_id) == [("governor", block)]
    await _deliver(identity_db, staff_sync.apply, _staff_event("removed", user_id, block, assignment=second))
    assert await _bindings(identity_db, user_id) == []


async def test_moves_apply_in_blocks_order_and_staffing_events_follow_them(identity_db: Database) -> None:
    user_id = await _user(identity_db)
    tag = uuid.uuid4().hex[:6]
    old, middle, final = f"{tag}/s1/c1/b1", f"{tag}/s1/c2/b1", f"{tag}/s2/c2/b1"
    base = 0  # a fresh database: no moves applied yet
    assignment = str(uuid.uuid4())
    await _deliver(
        identity_db,
        staff_sync.apply,
        _staff_event("assigned", user_id, old, assignment=assignment, tree_version=base),
    )
    # Move 2 (the community moves to another street) overtakes move 1 (the block moves to that
    # community): it waits, and applying it first would have left the binding at the old path.
    move1 = _move_event(base + 1, old, middle)
    move2 = _move_event(base + 2, f"{tag}/s1/c2", f"{tag}/s2/c2")
    with pytest.raises(treemoves.NotYetApplicable):
        await _deliver(identity_db, node_moves.SPEC.handler, move2)
    # A staffing event written after move 1 waits for it too.
    removal = _staff_event("removed", user_id, middle, assignment=assignment, tree_version=base + 1)
    with pytest.raises(treemoves.NotYetApplicable):
        await _deliver(identity_db, staff_sync.apply, removal)
    await _deliver(identity_db, node_moves.SPEC.handler, move1)
    assert await _bindings(identity_db, user_id) == [("governor", middle)]
    await _deliver(identity_db, node_moves.SPEC.handler, move2)
    await _deliver(identity_db, node_moves.SPEC.handler, move1)  # redelivered: applied once only
    assert await _bindings(identity_db, user_id) == [("governor", final)]
    # A second governor assigned before both moves, heard of only now: brought to the final path.
    other = await _user(identity_db)
    late = _staff_event("assigned", other, old, tree_version=base)
    await _deliver(identity_db, staff_sync.apply, late)
    assert await _bindings(identity_db, other) == [("governor", final)]
    # The removal written between the moves finds its assignment where the moves put it.
    await _deliver(identity_db, staff_sync.apply, removal)
    assert await _bindings(identity_db, user_id) == []


async def test_a_clashing_write_in_a_handler_is_retried_not_taken_for_a_duplicate(
    identity_db: Database,
) -> None:
    # The consumer runner acks an IntegrityError as "another replica recorded this event first";
    # a handler's own unique-key clash (a concurrent grant) must fail the delivery instead.
    user_id = await _user(identity_db)
    binding = {"principal": f"users/{user_id}", "role": "governor", "scope": "d1/s1/c1/b9"}
    async with identity_db.transaction() as session:
        session.add(RoleBinding(id=str(uuid.uuid4()), granted_by="users/x", create_time=utcnow(), **binding))
    with pytest.raises(treemoves.ConflictingWrite):
        async with identity_db.transaction() as session, treemoves.conflicts_retried(session):
            session.add(
                RoleBinding(id=str(uuid.uuid4()), granted_by="users/y", create_time=utcnow(), **binding)
            )


# ---------------------------------------------------------------------------- real events on the stream


def _absent(data: bytes, *secrets: str) -> None:
    for secret in secrets:
        assert secret.encode() not in data, f"{secret!r} is in the event"


async def test_ticket_events_carry_no_contact_data_or_free_text(
    stack: Stack, blocks: BlocksServiceStub, tickets: TicketsServiceStub, identity: IdentityClient
) -> None:
    world = await make_world(blocks, tickets, identity)
    dispatcher = md(world.staff["dispatcher"].token)
    t = await tickets.CreateTicket(
        tpb.CreateTicketRequest(
            ticket=new_ticket(
                world,
                source=tpb.TICKET_SOURCE_HOTLINE,
                contact=tpb.Contact(display_name="王秀英", phone="138-0731-2345"),
                description="王秀英家门口的井盖丢了",
            )
        ),
        metadata=dispatcher,
    )
    assert t.contact.phone == "+8613807312345"  # kept by tickets, for staff
    await tickets.TransitionTicket(
        tpb.TransitionTicketRequest(
            name=t.name, action=tpb.ACTION_REJECT, reason="王秀英来电撤回 13807312345"
        ),
        metadata=dispatcher,
    )
    found = await events_about(stack.nats_url, "tickets.v1.ticket.>", t.name, count=2)
    assert [e.type for _, e in found] == ["tickets.v1.ticket.created", "tickets.v1.ticket.rejected"]
    for data, _ in found:
        _absent(data, "13807312345", "王秀英", "3栋1单元", "井盖", "电梯")
    created = unpack_payload(found[0][1], tickets_events.TicketCreated).ticket
    assert (created.name, created.node, created.reporter) == (
        t.name,
        world.blocks[0],
        world.staff["dispatcher"].name,
    )
    assert created.source == tpb.TICKET_SOURCE_HOTLINE and created.state == tpb.TICKET_STATE_SUBMITTED
    rejected = unpack_payload(found[1][1], tickets_events.TicketTransitioned)
    assert rejected.ticket.state == tpb.TICKET_STATE_REJECTED
    assert rejected.entry.action == tpb.ACTION_REJECT and "reason" not in rejected.entry.details


async def test_household_building_and_visit_events_carry_ids_and_facts_only(
    stack: Stack, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    _street, community = await make_tree(blocks, identity.admin_token, {"b01": None})
    block = f"{community}/b01"
    building = await blocks.CreateBuilding(
        bpb.CreateBuildingRequest(
            building=bpb.Building(block=block, code="n3", display_name="3栋", address="湖湘路18号")
        ),
        metadata=admin,
    )
    found = await events_about(stack.nats_url, "blocks.v1.building.created", building.name)
    assert len(found) == 1
    _absent(found[0][0], "湖湘路18号")
    assert unpack_payload(found[0][1], blocks_events.BuildingCreated).code == "n3"

    resident, _, _ = await identity.make_user(block)
    household = await blocks.CreateHousehold(
        bpb.CreateHouseholdRequest(
            household=bpb.Household(
                code=f"h{uuid.uuid4().hex[:10]}",
                block=block,
                building="n3",
                address="湖湘路18号3栋401",
                residents=[
                    bpb.Resident(
                        display_name="李建国",
                        relation=bpb.RELATION_HEAD,
                        phone="13907310001",
                        birth_year=1950,
                        id_suffix="123X",
                        user=resident.name,
                    )
                ],
            )
        ),
        metadata=admin,
    )
    await blocks.UpdateHousehold(
        bpb.UpdateHouseholdRequest(
            household=bpb.Household(name=household.name, tags=[bpb.VULNERABILITY_TAG_ELDERLY_ALONE]),
            update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
        ),
        metadata=admin,
    )
    # Saving the same tags again changes nothing, and announces nothing.
    await blocks.UpdateHousehold(
        bpb.UpdateHouseholdRequest(
            household=bpb.Household(name=household.name, tags=[bpb.VULNERABILITY_TAG_ELDERLY_ALONE]),
            update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
        ),
        metadata=admin,
    )
    visit = await blocks.RecordVisit(
        bpb.RecordVisitRequest(
            visit=bpb.Visit(
                household=household.name, notes="李建国血压高,电话13907310001", issues_found=["独居", "漏水"]
            ),
            request_id=uuid.uuid4().hex,
        ),
        metadata=admin,
    )
    found = await events_about(stack.nats_url, "blocks.v1.>", household.name, count=2)
    assert [e.type for _, e in found] == ["blocks.v1.household.created", "blocks.v1.household.updated"]
    found += await events_about(stack.nats_url, "blocks.v1.visit.recorded", visit.name)
    assert len(found) == 3
    for data, _ in found:
        _absent(data, "李建国", "13907310001", "123X", "湖湘路18号", "1950")
    created = unpack_payload(found[0][1], blocks_events.HouseholdCreated).household
    assert (created.id, created.block, created.building) == (household.id, block, "n3")
    assert [(r.id, r.user) for r in created.residents] == [(household.residents[0].id, resident.name)]
    updated = unpack_payload(found[1][1], blocks_events.HouseholdUpdated)
    assert list(updated.changed_fields) == ["tags"]
    assert list(updated.household.tags) == [bpb.VULNERABILITY_TAG_ELDERLY_ALONE]
    recorded = unpack_payload(found[2][1], blocks_events.VisitRecorded).visit
    assert (recorded.household, recorded.block, recorded.issues_found) == (household.name, block, 2)


async def test_user_events_carry_no_phone_or_name(stack: Stack, identity: IdentityClient) -> None:
    phone = random_phone()
    user = await identity.stub.CreateUser(
        ipb.CreateUserRequest(
            user=ipb.User(
                phone=phone, display_name="赵居民", username=f"u{uuid.uuid4().hex[:8]}", scope="yuhu"
            ),
            password=PASSWORD,
        ),
        metadata=md(identity.admin_token),
    )
    found = await events_about(stack.nats_url, "identity.v1.user.created", user.name)
    assert len(found) == 1
    _absent(found[0][0], phone.removeprefix("+86")[-8:], "赵居民", user.username)
    summary = unpack_payload(found[0][1], identity_events.UserCreated).user
    assert (summary.id, summary.scope, summary.state) == (user.id, "yuhu", ipb.USER_STATE_ACTIVE)


async def test_units_members_and_the_calendar_announce_their_changes(
    stack: Stack, tickets: TicketsServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    code = f"unit-{uuid.uuid4().hex[:8]}"
    unit = await tickets.CreateUnit(
        tpb.CreateUnitRequest(
            unit=tpb.Unit(
                code=code,
                display_name="万楼街道民生服务中心",
                kind=tpb.UNIT_KIND_LIVELIHOOD,
                node="yuhu/wanlou",
            )
        ),
        metadata=admin,
    )
    found = await events_about(stack.nats_url, "tickets.v1.unit.created", unit.name)
    assert [unpack_payload(e, tickets_events.UnitCreated).unit.node for _, e in found] == ["yuhu/wanlou"]
    staff, _, _ = await identity.make_user("yuhu/wanlou")
    member = await tickets.AddUnitMember(
        tpb.AddUnitMemberRequest(parent=unit.name, user=staff.name), metadata=admin
    )
    await tickets.RemoveUnitMember(tpb.RemoveUnitMemberRequest(name=member.name), metadata=admin)
    found = await events_about(stack.nats_url, "tickets.v1.unit_member.>", member.name, count=2)
    assert [e.type for _, e in found] == ["tickets.v1.unit_member.added", "tickets.v1.unit_member.removed"]
    changed = [unpack_payload(e, tickets_events.UnitMemberChanged) for _, e in found]
    assert {(c.unit, c.user) for c in changed} == {(unit.name, staff.name)}
    # A refused removal (no such member) changes nothing and announces nothing.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await tickets.RemoveUnitMember(tpb.RemoveUnitMemberRequest(name=member.name), metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # 2070s: the gateway test asks for 2099 expecting no calendar, and the tests share a database.
    year = 2070 + uuid.uuid4().int % 10
    await tickets.SetCalendarYear(
        tpb.SetCalendarYearRequest(
            calendar_year=tpb.CalendarYear(
                year=year,
                days=[
                    tpb.CalendarDay(date=f"{year}-10-01", kind=tpb.DAY_KIND_HOLIDAY, display_name="国庆节")
                ],
            )
        ),
        metadata=admin,
    )
    found = await events_about(stack.nats_url, "tickets.v1.calendar_year.changed", f"calendarYears/{year}")
    assert len(found) >= 1
    days = unpack_payload(found[-1][1], tickets_events.CalendarYearChanged).calendar_year.days
    assert [(d.date, d.display_name) for d in days] == [(f"{year}-10-01", "国庆节")]
    found = await events_about(stack.nats_url, "tickets.v1.unit_member.>", member.name, count=3, within=1)
    assert len(found) == 2
