"""govkit.rowmap through the services' convert modules: every message byte for byte as the hand-written
converters built it (rowmap_expected.txtpb was printed from them), for ORM instances and Core rows."""

from __future__ import annotations

import datetime as dt
import re
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from sqlalchemy import create_engine, insert, select

from gov.tickets.v1 import tickets_pb2 as tpb
from govkit.rowmap import RowMap, computed, fmt
from services.blocks import convert as bc
from services.blocks import models as bm
from services.identity import convert as ic
from services.identity import models as im
from services.notifications import convert as nc
from services.notifications import models as nm
from services.notifications.template_admin import TemplateView
from services.points import convert as pc
from services.points import models as pm
from services.tickets import convert as tc
from services.tickets import models as tm

T = dt.datetime(2026, 5, 3, 8, 30, 15, 123456, tzinfo=dt.UTC)
EARLY = dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)  # before 1970: negative seconds
NAIVE = dt.datetime(2026, 5, 3, 8, 30)  # taken as UTC

ticket_fields: dict[str, Any] = dict(
    id="t1",
    category="road_damage",
    kind="general",
    state="in_progress",
    source="resident",
    title="Pothole",
    description="Deep one",
    media='["https://m/1.jpg"]',
    latitude=31.2,
    longitude=121.4,
    household_id="h1",
    address="12 Wanlou Road",
    node="sh/wanlou/b3",
    street="wanlou",
    district="sh",
    community="b3",
    reporter="users/u1",
    contact_name="Li Wei",
    contact_phone="+8613800000000",
    attributes='{"size": ["large"], "lane": ["left", "middle"]}',
    priority="high",
    matter_class="co_handled",
    suggested_unit="roads",
    lead_unit="",
    escalated=True,
    acknowledge_deadline=T,
    resolve_deadline=EARLY,
    acknowledge_overdue=False,
    resolve_overdue=True,
    acknowledge_time=T,
    resolve_time=None,
    close_time=None,
    resolution="",
    resolution_media='["r.jpg"]',
    mediation_outcome="not_settled",
    rating=4,
    rating_comment="ok",
    rating_by="users/u1",
    rating_time=T,
    merged_into="t0",
    reject_reason="",
    possible_duplicates='["t7", "t8"]',
    create_time=T,
    update_time=T,
    acknowledge_bucket=1,
    resolve_bucket=None,
    on_time=None,
    same_day=None,
)
bare_ticket = dict(
    ticket_fields,
    latitude=None,
    longitude=0.5,
    household_id=None,
    kind="",
    state="submitted",
    source="",
    priority="",
    matter_class="",
    mediation_outcome="",
    rating=None,
    rating_time=None,
    merged_into="",
    suggested_unit="",
    media="[]",
    attributes="{}",
    possible_duplicates="[]",
)
units = [
    tm.TicketUnit(
        ticket_id="t1", unit="water", role="assisting", status="acknowledged", reason="", update_time=T
    ),
    tm.TicketUnit(
        ticket_id="t1", unit="roads", role="lead", status="returned", reason="not ours", update_time=T
    ),
]
category = tm.Category(
    code="road_damage",
    display_name="Road damage",
    group_name="roads",
    description="d",
    keywords='["hole"]',
    default_unit="",
    default_center="livelihood",
    priority="normal",
    matter_class="public",
    kind="dispute",
    attributes='[{"code": "size", "display_name": "Size", "type": "single_value_list", "required": true,'
    ' "options": [["s", "Small"], ["l", "Large"]]}, {"code": "n", "display_name": "N", "type": "number"}]',
    acknowledge_seconds=3600,
    resolve_seconds=86400.5,
    sla_clock="working_hours",
    escalate_on_acknowledge_breach=True,
    active=True,
    create_time=T,
    update_time=T,
)  # public left out: an unflushed instance reads None
timeline = tm.TimelineEntry(
    seq=3,
    ticket_id="t1",
    action="accept",
    actor="users/d",
    time=T,
    from_state="submitted",
    to_state="accepted",
    note="n",
    unit="roads",
    details='{"source": "app", "reason": "typed"}',
)
bare_timeline = tm.TimelineEntry(
    seq=4,
    ticket_id="t1",
    action="Reopen",
    actor="users/d",
    time=T,
    from_state="",
    to_state="",
    note="",
    unit="",
    details="{}",
)
days = [
    tm.CalendarDay(day="2026-10-02", year=2026, kind="holiday", name="National Day"),
    tm.CalendarDay(day="2026-09-27", year=2026, kind="workday", name=""),
]

node = bm.Node(
    id="n1",
    path="sh/wanlou",
    code="wanlou",
    parent_path="sh",
    kind="street",
    display_name="Wanlou",
    boundary=None,
    state="active",
    create_time=T,
    update_time=NAIVE,
)
staff = bm.StaffAssignment(
    id="s1",
    block_path="sh/wanlou/b3",
    user_id="u9",
    role="assistant",
    assistant_kind="party_group_leader",
    create_time=T,
)
bare_staff = bm.StaffAssignment(
    id="s2", block_path="sh/wanlou/b3", user_id="u8", role="governor", assistant_kind=None, create_time=T
)
building = bm.Building(id="b1", block_path="sh/wanlou/b3", code="7", display_name="No. 7", address="7 Lane")
household = bm.Household(
    id="h1",
    code="7-101",
    block_path="sh/wanlou/b3",
    building_code=None,
    address="7-101",
    tags="elderly_alone,,left_behind_child",
    create_time=T,
    update_time=T,
)
residents = [
    bm.Resident(
        id="r1",
        household_id="h1",
        display_name="Li",
        relation="head",
        phone="+861",
        birth_year=1950,
        id_suffix="123X",
        user_id="u5",
    ),
    bm.Resident(
        id="r2",
        household_id="h1",
        display_name="Wang",
        relation="spouse",
        phone=None,
        birth_year=None,
        id_suffix=None,
        user_id=None,
    ),
]
visit = bm.Visit(
    id="v1",
    household_id="h1",
    block_path="sh/wanlou/b3",
    visitor="users/u9",
    visit_time=T,
    notes="n",
    issues='["leak", "stairs"]',
    issues_resolved='["leak"]',
    create_time=T,
)

user = im.User(
    id="u1",
    phone="+8613800000000",
    username=None,
    display_name="Li",
    scope="sh/wanlou",
    state="active",
    password_hash="secret",
    create_time=T,
    update_time=T,
)
binding = im.RoleBinding(
    id="rb1", principal="users/u1", role="unit_staff", scope="sh", granted_by="users/a", create_time=T
)
service_account = im.ServiceAccount(
    id="sa1", client_id="c1", display_name="Robot", secret_hash="x", disabled=True, create_time=T
)

indicator = pm.Indicator(
    id="i1",
    node="sh",
    code="help",
    display_name="Help",
    description="d",
    kind="reward",
    points=5,
    evidence_required=True,
    approval_required=False,
    cap_count=3,
    cap_period="",
    validity_months=12,
    credit_household=True,
    active=True,
    version=2,
    create_time=T,
    update_time=T,
)
award = pm.Award(
    id="a1",
    account_id="c1",
    recipient="users/u1",
    indicator_id="i1",
    indicator_version=2,
    kind="penalty",
    points=5,
    node="sh",
    note="n",
    evidence='["e1"]',
    state="pending_approval",
    recorded_by="users/s",
    decided_by="",
    decision_note="",
    applied=3,
    outstanding=2,
    approval_deadline=T,
    create_time=T,
    decide_time=None,
    request_hash="h",
    appeal_state="",
    appeal_reason="",
    appeal_answer="",
    source_event="ev1",
    household_award="a0",
)
account = pm.Account(
    id="c1",
    owner="users/u1",
    node="sh",
    credits_posted=50,
    debits_posted=20,
    credits_pending=4,
    debits_pending=6,
    outstanding=1,
    create_time=T,
    update_time=T,
)
entry = pm.Entry(
    seq=1,
    id="e1",
    kind="redemption",
    phase="pending",
    debit_account="c1",
    credit_account="c2",
    account_id="c1",
    amount=7,
    pending_id=None,
    reverses="e0",
    settles=None,
    outstanding_delta=-1,
    award_id=None,
    redemption_id="d1",
    actor="users/s",
    note="",
    expire_time=None,
    timeout_time=T,
    create_time=T,
)
exchange_point = pm.ExchangePoint(
    id="x1",
    node="sh",
    display_name="Shop",
    address="1 Road",
    staff='["u1", "u2"]',
    active=False,
    create_time=T,
    update_time=T,
)
item = pm.Item(
    id="it1",
    exchange_point_id="x1",
    display_name="Soap",
    description="",
    kind="goods",
    price=3,
    stock=0,
    limit_per_person=1,
    limit_period="week",
    active=True,
    create_time=T,
    update_time=T,
)
redemption = pm.Redemption(
    id="d1",
    item_id="it1",
    exchange_point_id="x1",
    account_id="c1",
    resident="users/u1",
    quantity=2,
    points=6,
    state="reserved",
    expire_time=T,
    fulfilled_by="",
    cancelled_by="",
    reason="",
    create_time=T,
    update_time=T,
    request_hash="h",
)

inbox_item = nm.InboxItem(
    seq=9,
    id="m1",
    recipient="users/u1",
    event_id="ev",
    kind="ticket.resolved",
    title="T",
    body="B",
    link="/t/1",
    resource="tickets/t1",
    node="sh",
    urgent=True,
    create_time=T,
    read_time=None,
)
delivery = nm.Delivery(
    id="d1",
    event_id="ev",
    recipient="users/u1",
    channel="sms",
    kind="k",
    node="sh",
    subject="s",
    body="b",
    link="l",
    state="digested",
    attempts=2,
    last_error="e",
    next_attempt_time=T,
    lease_until=None,
    create_time=T,
    update_time=T,
    sent_time=None,
    digest_id="d0",
)
endpoint = nm.Endpoint(
    id="ep1",
    owner="users/u1",
    channel="webhook",
    address="https://hook",
    secret="never",
    node="sh",
    create_time=T,
)
template = TemplateView(
    kind="ticket.resolved",
    channel="email",
    locale="zh-CN",
    subject="S",
    body="B",
    customized=True,
    update_time=None,
)


def core_row(table: Any, values: dict[str, Any]) -> Any:
    """A SQLAlchemy Core row of `table` holding `values`, as the read paths hand them over."""
    engine = create_engine("sqlite://")
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), values)
        return conn.execute(select(table)).one()


CASES: dict[str, Callable[[], Message]] = {
    "ticket": lambda: tc.ticket(tm.Ticket(**ticket_fields), units),
    "ticket_core_row": lambda: tc.ticket(core_row(tm.Ticket.__table__, ticket_fields), units),
    "ticket_bare": lambda: tc.ticket(tm.Ticket(**bare_ticket), []),
    "ticket_summary": lambda: tc.ticket_summary(tm.Ticket(**ticket_fields), units),
    "unit": lambda: tc.unit(
        tm.Unit(code="roads", display_name="Roads", kind="department", node="sh", create_time=T)
    ),
    "member": lambda: tc.member(tm.UnitMember(unit_code="roads", user_id="u1", create_time=T)),
    "category": lambda: tc.category(category),
    "timeline_entry": lambda: tc.timeline_entry(timeline),
    "timeline_entry_bare": lambda: tc.timeline_entry(bare_timeline),
    "entry_summary": lambda: tc.entry_summary(timeline),
    "calendar_year": lambda: tc.calendar_year(2026, days, T),
    "node": lambda: bc.node(node),
    "staff": lambda: bc.staff(staff, ["h1", "h2"]),
    "staff_bare": lambda: bc.staff(bare_staff),
    "building": lambda: bc.building(building),
    "household": lambda: bc.household(household, residents),
    "household_summary": lambda: bc.household_summary(household, residents),
    "visit": lambda: bc.visit(visit),
    "visit_summary": lambda: bc.visit_summary(visit),
    "user": lambda: ic.user(user),
    "user_core_row": lambda: ic.user(
        core_row(im.User.__table__, {c: getattr(user, c) for c in USER_COLUMNS})
    ),
    "user_fact": lambda: ic.user_fact(user),
    "user_summary": lambda: ic.user_summary(user),
    "role_binding": lambda: ic.role_binding(binding),
    "service_account": lambda: ic.service_account(service_account),
    "indicator": lambda: pc.indicator(indicator),
    "award": lambda: pc.award(award),
    "award_entry": lambda: pc.award(award, "e5"),
    "award_facts": lambda: pc.award_facts(award),
    "account": lambda: pc.account(account, 3, T),
    "account_bare": lambda: pc.account(account),
    "entry": lambda: pc.entry(entry, ["e2", "e3"]),
    "entry_facts": lambda: pc.entry_facts(entry),
    "exchange_point": lambda: pc.exchange_point(exchange_point),
    "item": lambda: pc.item(item),
    "redemption": lambda: pc.redemption(redemption),
    "redemption_facts": lambda: pc.redemption_facts(redemption),
    "inbox_item": lambda: nc.inbox_item(inbox_item),
    "delivery": lambda: nc.delivery(delivery),
    "endpoint": lambda: nc.endpoint(endpoint),
    "template": lambda: nc.template(template),
    "notice_recipient": lambda: nc.notice_recipient(inbox_item),
}
USER_COLUMNS = (
    "id",
    "phone",
    "username",
    "display_name",
    "scope",
    "state",
    "password_hash",
    "create_time",
    "update_time",
)


def _expected() -> dict[str, tuple[str, str]]:
    """case -> (message type, text format): what the hand-written converters built for these rows
    (printed from them before they were replaced)."""
    text = (Path(__file__).parent / "rowmap_expected.txtpb").read_text()
    expected = {}
    for block in re.split(r"^# ", text, flags=re.MULTILINE)[1:]:
        head, _, body = block.partition("\n")
        case, _, kind = head.partition(": ")
        expected[case] = (kind, body)
    return expected


EXPECTED = _expected()


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_are_byte_identical_to_the_hand_written_ones(case: str) -> None:
    message = CASES[case]()
    kind, text = EXPECTED[case.removesuffix("_core_row")]  # a Core row gives what the instance does
    assert type(message).__name__ == kind
    expected = text_format.Parse(text, type(message)())
    assert message.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


def test_an_unknown_stored_name_is_an_error_and_other_cases_are_looked_up() -> None:
    assert tc.unit(tm.Unit(code="c", display_name="C", kind="Department", node="sh", create_time=T)).kind == (
        tpb.UNIT_KIND_DEPARTMENT
    )
    with pytest.raises(ValueError, match="UNIT_KIND_NO_SUCH_KIND"):
        tc.unit(tm.Unit(code="c", display_name="C", kind="no_such_kind", node="sh", create_time=T))


def test_declarations_are_checked_when_the_map_is_built() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        RowMap(tpb.Unit, tm.Unit, colour="kind")
    with pytest.raises(TypeError, match="no attribute colour"):
        RowMap(tpb.Unit, tm.Unit, kind="colour")
    with pytest.raises(TypeError, match="keywords: declare how"):
        RowMap(tpb.Category, tm.Category)  # a JSON text in the row, a repeated message in the API


def test_fields_given_per_call_and_templates() -> None:
    units = RowMap(
        tpb.Unit, tm.Unit, name=fmt("units/{node}/{code}"), display_name=computed(str.upper, "code")
    )
    row = tm.Unit(code="c", display_name="C", kind="", node="sh", create_time=None)
    assert units(row, node="given") == tpb.Unit(name="units/sh/c", code="c", display_name="C", node="given")
    optional = RowMap(tpb.Unit, tm.Unit, name=fmt("units/{node}/{code}", optional=True))
    assert optional(tm.Unit(code="c", node="", create_time=T)).name == ""


def test_rows_without_a_dict_convert_by_attribute() -> None:
    """Named tuples (identity's caller_views splits one joined row into two) have no __dict__."""
    row = tm.Unit(code="c", display_name="C", kind="department", node="sh", create_time=T)
    Plain = namedtuple("Plain", ["code", "display_name", "kind", "node", "create_time"])
    as_tuple = Plain(row.code, row.display_name, row.kind, row.node, row.create_time)
    assert tc.unit(as_tuple) == tc.unit(row)
