"""The demo data files (demo/wanlou/): what they hold, that they hang together, that a mistake in them
is reported by file and entry, and that none of it is in the runtime packages or the image."""

from __future__ import annotations

import ast
import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest

from demo import tickets as wanlou
from demo.places import BlockPlace, block_places
from demo.street import WANLOU, load_street
from gov.tickets.v1 import tickets_pb2 as pb
from services.tickets import lifecycle

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 10, 7, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def places() -> dict[int, BlockPlace]:
    return block_places(load_street(), wanlou.PLAN)


def test_ten_units_twenty_five_categories_and_forty_tickets() -> None:
    assert len(wanlou.UNITS) == 10 and len(wanlou.UNITS_BY_CODE) == 10
    centers = [u for u in wanlou.UNITS if u.kind != pb.UNIT_KIND_DEPARTMENT]
    assert len(centers) == 4 and {u.node for u in centers} == {"yuhu/wanlou"}
    departments = [u for u in wanlou.UNITS if u.kind == pb.UNIT_KIND_DEPARTMENT]
    assert len(departments) == 6 and {u.node for u in departments} == {"yuhu"}
    assert len(wanlou.CATEGORIES) == 25 and len(wanlou.CATEGORIES_BY_CODE) == 25
    assert len({c.group for c in wanlou.CATEGORIES}) == 12
    assert all(c.route in wanlou.UNITS_BY_CODE for c in wanlou.CATEGORIES)
    assert len(wanlou.TICKETS) == 40 and len(wanlou.TICKETS_BY_KEY) == 40


def test_every_ticket_state_is_the_target_of_at_least_two_tickets() -> None:
    targets = Counter(t.target for t in wanlou.TICKETS)
    states = [v for v in pb.TicketState.values() if v != pb.TICKET_STATE_UNSPECIFIED]
    assert {pb.TicketState.Name(s): targets[s] for s in states if targets[s] < 2} == {}


def test_the_sla_durations_read_as_written() -> None:
    lift = wanlou.CATEGORIES_BY_CODE["lift-failure"].sla
    assert (lift.acknowledge_within, lift.resolve_within) == (dt.timedelta(minutes=15), dt.timedelta(hours=4))
    assert lift.calendar_clock and lift.escalate_on_acknowledge_breach
    service = wanlou.CATEGORIES_BY_CODE["property-service"].sla
    assert service.resolve_within == dt.timedelta(hours=21)  # 3 working days of 7 hours
    assert not service.calendar_clock and not service.escalate_on_acknowledge_breach


def test_every_ticket_lies_well_inside_its_block_with_its_categorys_attributes(
    places: dict[int, BlockPlace],
) -> None:
    residents = wanlou.demo_residents(load_street())
    for ticket in wanlou.TICKETS:
        place = places[ticket.block]
        message = wanlou.ticket_message(ticket, place, NOW)
        lat, lng = message.location.latitude, message.location.longitude
        assert place.contains(lat, lng) or (lat, lng) == place.point, ticket.key
        assert message.location.address.startswith("万楼街道"), ticket.key
        category = wanlou.CATEGORIES_BY_CODE[ticket.category]
        defined = {a.code: a for a in category.attributes}
        given = {a.code: list(a.values) for a in message.attributes}
        assert set(given) <= set(defined), ticket.key
        assert {a.code for a in category.attributes if a.required} <= set(given), ticket.key
        for code, values in given.items():
            if defined[code].options:
                assert set(values) <= {k for k, _ in defined[code].options}, (ticket.key, code)
            if defined[code].type == pb.ATTRIBUTE_TYPE_DATETIME:
                assert all(dt.datetime.fromisoformat(v) <= NOW for v in values), (ticket.key, code)
        if ticket.reporter == "resident":
            assert ticket.block in residents, ticket.key


def _actor(ticket: wanlou.DemoTicket, step: wanlou.Step, place: BlockPlace) -> lifecycle.Actor:
    if step.actor.startswith("unit:"):
        return lifecycle.Actor("unit-staff", "unit_staff", unit=step.actor.removeprefix("unit:"))
    if step.actor == "reporter":
        return lifecycle.Actor("reporter", ticket.reporter, place.path)
    scopes = {"dispatcher": wanlou.STREET, "leader": wanlou.DISTRICT, "supervisor": place.path}
    return lifecycle.Actor(step.actor, step.actor, scopes[step.actor])


def test_every_ticket_walks_to_its_target_through_the_lifecycles_own_rules(
    places: dict[int, BlockPlace],
) -> None:
    for ticket in wanlou.TICKETS:
        place = places[ticket.block]
        state = lifecycle.Ticket(
            ticket.key, lifecycle.State.SUBMITTED, place.path, wanlou.STREET, wanlou.DISTRICT, "reporter"
        )
        for step in ticket.steps:
            command = lifecycle.Command(
                lifecycle.Action(pb.Action.Name(step.action).removeprefix("ACTION_").lower()),
                note=step.note,
                lead_unit=step.lead_unit,
                assisting_units=step.assisting_units,
                rating=step.score or None,
                reason=step.reason,
            )
            state, _ = lifecycle.apply(state, command, _actor(ticket, step, place), NOW)
        assert state.state == pb.TicketState.Name(ticket.target).removeprefix("TICKET_STATE_").lower(), (
            ticket.key
        )


# --------------------------------------------------------------------------- mistakes are named


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("units.csv", ",rapid_response,", ",rapid,", r"units.csv line 4: kind 'rapid' is not one of"),
        (
            "units.csv",
            "wanlou-guidance,万楼街道综合指挥中心",
            "wanlou-guidance,",
            r"line 2: display_name is required",
        ),
        (
            "categories.toml",
            'priority = "urgent"',
            'priorty = "urgent"',
            r"'lift-failure': priority is required",
        ),
        (
            "categories.toml",
            'matter_class = "public"\ndefault_center = "rapid_response"',
            'matter_class = "public"\ndefault_center = "rapid_response"\npublik = true',
            r"category 'lift-failure': unknown key publik",
        ),
        ("categories.toml", '"4 hours"', '"4 hrs"', r"'lift-failure' sla: '4 hrs' is not"),
        (
            "categories.toml",
            'default_unit = "yuhu-urban"',
            'default_unit = "yuhu-roads"',
            r"'yuhu-roads' is not in units",
        ),
        (
            "tickets.toml",
            'lead_unit = "wanlou-rapid"',
            'lead_unit = "wanlou-fast"',
            r"ticket 't01' step 2: unit",
        ),
        ("tickets.toml", 'actor = "dispatcher"', 'actor = "mayor"', r"ticket 't01' step 1: actor 'mayor'"),
        ("tickets.toml", 'category = "lift-failure"', 'category = "lift"', r"ticket 't01': category 'lift'"),
        (
            "tickets.toml",
            'target = "closed"',
            'target = "done"',
            r"ticket 't01': target 'done' is not one of",
        ),
        ("tickets.toml", "block = 1\n", "block = 18\n", r"ticket 't01': block must be 1-17"),
        ("tickets.toml", 'key = "t02"', 'key = "t01"', r"ticket 't01': the key is used twice"),
    ],
)
def test_a_mistake_in_the_data_names_its_file_and_entry(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    shutil.copytree(WANLOU, tmp_path, dirs_exist_ok=True)
    path = tmp_path / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"the test's anchor {old!r} is gone from {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(wanlou.DemoDataError, match=message):
        units = wanlou.load_units(tmp_path / "units.csv")
        by_code = {u.code: u for u in units}
        categories = wanlou.load_categories(tmp_path / "categories.toml", by_code)
        wanlou.load_tickets(tmp_path / "tickets.toml", by_code, {c.code: c for c in categories}, 17)


def test_a_merge_must_name_a_ticket_before_it(tmp_path: Path) -> None:
    shutil.copytree(WANLOU, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "tickets.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('original = "t06"', 'original = "t40"'))
    with pytest.raises(wanlou.DemoDataError, match="original 't40' must be a ticket before it"):
        wanlou.load_tickets(path, wanlou.UNITS_BY_CODE, wanlou.CATEGORIES_BY_CODE, 17)


# ----------------------------------------------------------------------------- not in the image


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_runtime_packages_and_the_image_hold_no_demo() -> None:
    runtime = [p for d in ("govkit", "services", "gateway") for p in (REPO / d).rglob("*.py")]
    assert runtime
    assert [str(p) for p in runtime if "demo" in _imports(p)] == []
    assert [str(p) for p in runtime if "demo" in p.name] == []
    copied = [
        line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
    ]
    assert not any(src.startswith("demo") for src in copied)
    assert "demo" in (REPO / ".dockerignore").read_text().split()
    # What production needs stays: the public-holiday calendars ship with the tickets service.
    assert list((REPO / "services" / "tickets" / "holidays").glob("*.csv"))
