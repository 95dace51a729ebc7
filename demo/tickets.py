"""The tickets demo of the demo street 万楼街道 (Wanlou), read from its data files, and the requests
that carry it: its handling units, its category catalogue and forty work orders in every state.

- `UNITS` (wanlou/units.csv): the street's four centers and the district's six departments, each
  with one staff member whose phone (178 0732 ....) is outside the number blocks the street's
  residents and staff use (`demo.generate.MOBILE_PREFIXES`).
- `CATEGORIES` (wanlou/categories.toml): 25 categories with routing, priority, matter class, typed
  attributes and SLA targets.
- `TICKETS` (wanlou/tickets.toml): 40 tickets, each with the transitions (`Step`) that take it to
  its target state.

The data files say what each field means. Reading them checks every name against the API's enums
and every reference (unit, category, block, original ticket) against the data, so a mistake stops
the seeding with the file and entry named, before anything is sent. `demo.seed_tickets` loads it all
into a running system over gRPC.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from demo.places import BlockPlace, Resident, block_residents
from demo.street import WANLOU, DemoFiles, load_plan
from gov.tickets.v1 import tickets_pb2 as pb
from govkit.protobuf import duration

PLAN = load_plan()
STREET = PLAN.street_path
DISTRICT = PLAN.district_path
CST = dt.timezone(dt.timedelta(hours=8), "CST")
# A working day of the working calendar: 08:30-12:00 and 14:00-17:30, 7 hours.
WORKING_DAY = dt.timedelta(hours=7)


class DemoDataError(ValueError):
    """A mistake in a demo data file; the message names the file and the entry."""


# ------------------------------------------------------------------------------------ the shapes


@dataclass(frozen=True)
class UnitSpec:
    code: str
    display_name: str
    kind: int  # pb.UnitKind
    node: str
    staff_name: str  # the unit's demo staff member
    staff_phone: str  # mainland mobile; 178 0732 .... is not used by the street's people


@dataclass(frozen=True)
class Sla:
    acknowledge_within: dt.timedelta
    resolve_within: dt.timedelta
    calendar_clock: bool = False  # round the clock instead of working hours
    escalate_on_acknowledge_breach: bool = False


@dataclass(frozen=True)
class Attr:
    code: str
    display_name: str
    type: int  # pb.AttributeType
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class CategorySpec:
    code: str
    display_name: str
    group: str
    description: str
    keywords: tuple[str, ...]
    priority: int  # pb.Priority
    matter_class: int  # pb.MatterClass
    sla: Sla
    attributes: tuple[Attr, ...] = ()
    default_center: int = pb.UNIT_KIND_UNSPECIFIED  # street work: one of the street's four centers
    default_unit: str = ""  # a department's unit code
    kind: int = pb.TICKET_KIND_GENERAL
    public: bool = False  # anyone may read its tickets (Open311 without a key)

    @property
    def route(self) -> str:
        """The unit code a ticket of this category in the demo street goes to."""
        return self.default_unit or CENTERS[self.default_center]


@dataclass(frozen=True)
class Step:
    """One transition; `actor` is dispatcher, leader, reporter, supervisor or unit:<code>."""

    action: int  # pb.Action
    actor: str
    note: str = ""
    reason: str = ""
    lead_unit: str = ""  # unit code
    assisting_units: tuple[str, ...] = ()
    original: str = ""  # merge: the demo ticket key of the original
    score: int = 0
    comment: str = ""
    mediation_outcome: int = pb.MEDIATION_OUTCOME_UNSPECIFIED


@dataclass(frozen=True)
class DemoTicket:
    key: str  # stable: the request id of its creation is derived from it
    block: int  # 1..17
    category: str
    source: int  # pb.TicketSource
    reporter: str  # resident, governor, assistant or dispatcher
    title: str
    description: str
    spot: str  # where exactly: after the building's address, or after a lane's name
    target: int  # pb.TicketState after the steps
    steps: tuple[Step, ...]
    building: int | None = 0  # index into the block's buildings; None: in a lane, not a building
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    contact: tuple[str, str] | None = None  # (name, phone) of a hotline caller
    nudge: int = 0  # which of a few points around the block's deepest point (0: by key)


# -------------------------------------------------------------------------------- reading files


@dataclass
class _Entry:
    """One entry of a data file, read key by key: an unknown or missing key is an error."""

    values: Mapping[str, Any]
    where: str
    used: set[str] = field(default_factory=set)

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if self.values.get(key) in (None, ""):
            if required:
                raise DemoDataError(f"{self.where}: {key} is required")
            return default
        return self.values[key]

    def enum(self, key: str, wrapper: EnumTypeWrapper, prefix: str, default: str | None = None) -> int:
        name = self.get(key, default, required=default is None)
        try:
            return int(wrapper.Value(f"{prefix}_{str(name).upper()}"))
        except ValueError:
            names = [n.removeprefix(f"{prefix}_").lower() for n in wrapper.keys()[1:]]
            raise DemoDataError(f"{self.where}: {key} {name!r} is not one of {', '.join(names)}") from None

    def done(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            raise DemoDataError(f"{self.where}: unknown key {', '.join(unknown)}")


_DURATION = re.compile(r"(\d+) (minute|hour|working day)s?")
_UNITS_OF_TIME = {
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
    "working day": WORKING_DAY,
}


def _duration(text: str, where: str) -> dt.timedelta:
    match = _DURATION.fullmatch(str(text).strip())
    if not match:
        raise DemoDataError(f'{where}: {text!r} is not "<n> minutes", "<n> hours" or "<n> working days"')
    return int(match[1]) * _UNITS_OF_TIME[match[2]]


def load_units(path: Path) -> tuple[UnitSpec, ...]:
    units = []
    with path.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            entry = _Entry(row, f"{path.name} line {line}")
            units.append(
                UnitSpec(
                    code=entry.get("code", required=True),
                    display_name=entry.get("display_name", required=True),
                    kind=entry.enum("kind", pb.UnitKind, "UNIT_KIND"),
                    node=entry.get("node", required=True),
                    staff_name=entry.get("staff_name", required=True),
                    staff_phone=entry.get("staff_phone", required=True),
                )
            )
            entry.done()
    return tuple(units)


def _attribute(values: Mapping[str, Any], where: str) -> Attr:
    entry = _Entry(values, where)
    attr = Attr(
        code=entry.get("code", required=True),
        display_name=entry.get("display_name", required=True),
        type=entry.enum("type", pb.AttributeType, "ATTRIBUTE_TYPE"),
        required=bool(entry.get("required", False)),
        options=tuple(entry.get("options", {}).items()),
        description=entry.get("description", ""),
    )
    entry.done()
    return attr


def _sla(values: Mapping[str, Any], where: str) -> Sla:
    entry = _Entry(values, f"{where} sla")
    clock = entry.enum("clock", pb.SlaClock, "SLA_CLOCK", default="working_hours")
    sla = Sla(
        acknowledge_within=_duration(entry.get("acknowledge_within", required=True), entry.where),
        resolve_within=_duration(entry.get("resolve_within", required=True), entry.where),
        calendar_clock=clock == pb.SLA_CLOCK_CALENDAR,
        escalate_on_acknowledge_breach=bool(entry.get("escalate_on_acknowledge_breach", False)),
    )
    entry.done()
    return sla


def load_categories(path: Path, units: Mapping[str, UnitSpec]) -> tuple[CategorySpec, ...]:
    categories = []
    for values in tomllib.loads(path.read_text(encoding="utf-8"))["categories"]:
        entry = _Entry(values, f"{path.name} category {values.get('code', len(categories) + 1)!r}")
        default_unit = entry.get("default_unit", "")
        default_center = entry.enum("default_center", pb.UnitKind, "UNIT_KIND", default="unspecified")
        if bool(default_unit) == bool(default_center):
            raise DemoDataError(f"{entry.where}: give either default_unit or default_center")
        if not isinstance(entry.values.get("public"), bool):
            raise DemoDataError(f"{entry.where}: public must be true or false")
        if default_unit and default_unit not in units:
            raise DemoDataError(f"{entry.where}: default_unit {default_unit!r} is not in units.csv")
        categories.append(
            CategorySpec(
                code=entry.get("code", required=True),
                display_name=entry.get("display_name", required=True),
                group=entry.get("group", required=True),
                description=entry.get("description", ""),
                keywords=tuple(entry.get("keywords", ())),
                priority=entry.enum("priority", pb.Priority, "PRIORITY"),
                matter_class=entry.enum("matter_class", pb.MatterClass, "MATTER_CLASS"),
                sla=_sla(entry.get("sla", required=True), entry.where),
                attributes=tuple(
                    _attribute(a, f"{entry.where} attribute {i}")
                    for i, a in enumerate(entry.get("attributes", ()), start=1)
                ),
                default_center=default_center,
                default_unit=default_unit,
                kind=entry.enum("kind", pb.TicketKind, "TICKET_KIND", default="general"),
                public=entry.get("public", required=True),
            )
        )
        entry.done()
    return tuple(categories)


_ACTORS = ("dispatcher", "leader", "reporter", "supervisor")
_REPORTERS = ("resident", "governor", "assistant", "dispatcher")


def _step(values: Mapping[str, Any], where: str, units: Mapping[str, UnitSpec]) -> Step:
    entry = _Entry(values, where)
    step = Step(
        action=entry.enum("action", pb.Action, "ACTION"),
        actor=entry.get("actor", required=True),
        note=entry.get("note", ""),
        reason=entry.get("reason", ""),
        lead_unit=entry.get("lead_unit", ""),
        assisting_units=tuple(entry.get("assisting_units", ())),
        original=entry.get("original", ""),
        score=int(entry.get("score", 0)),
        comment=entry.get("comment", ""),
        mediation_outcome=entry.enum(
            "mediation_outcome", pb.MediationOutcome, "MEDIATION_OUTCOME", "unspecified"
        ),
    )
    entry.done()
    named = [step.actor.removeprefix("unit:")] if step.actor.startswith("unit:") else []
    if not named and step.actor not in _ACTORS:
        raise DemoDataError(
            f"{where}: actor {step.actor!r} is not unit:<code> or one of {', '.join(_ACTORS)}"
        )
    for unit in [*named, *([step.lead_unit] if step.lead_unit else []), *step.assisting_units]:
        if unit not in units:
            raise DemoDataError(f"{where}: unit {unit!r} is not in units.csv")
    return step


def _contact(values: Mapping[str, Any] | None, where: str) -> tuple[str, str] | None:
    if values is None:
        return None
    entry = _Entry(values, f"{where} contact")
    contact = (entry.get("name", required=True), entry.get("phone", required=True))
    entry.done()
    return contact


def load_tickets(
    path: Path, units: Mapping[str, UnitSpec], categories: Mapping[str, CategorySpec], blocks: int
) -> tuple[DemoTicket, ...]:
    tickets: list[DemoTicket] = []
    for values in tomllib.loads(path.read_text(encoding="utf-8"))["tickets"]:
        entry = _Entry(values, f"{path.name} ticket {values.get('key', len(tickets) + 1)!r}")
        contact = _contact(entry.get("contact"), entry.where)
        in_lane = bool(entry.get("in_lane", False))
        ticket = DemoTicket(
            key=entry.get("key", required=True),
            block=int(entry.get("block", required=True)),
            category=entry.get("category", required=True),
            source=entry.enum("source", pb.TicketSource, "TICKET_SOURCE"),
            reporter=entry.get("reporter", required=True),
            title=entry.get("title", required=True),
            description=entry.get("description", ""),
            spot=entry.get("spot", ""),
            target=entry.enum("target", pb.TicketState, "TICKET_STATE"),
            steps=tuple(
                _step(s, f"{entry.where} step {i}", units)
                for i, s in enumerate(entry.get("steps", ()), start=1)
            ),
            building=None if in_lane else int(entry.get("building", 0)),
            attributes=tuple((code, tuple(v)) for code, v in entry.get("attributes", {}).items()),
            contact=contact,
            nudge=int(entry.get("nudge", 0)),
        )
        entry.done()
        if in_lane and "building" in values:
            raise DemoDataError(f"{entry.where}: give building or in_lane, not both")
        if ticket.category not in categories:
            raise DemoDataError(f"{entry.where}: category {ticket.category!r} is not in categories.toml")
        if not 1 <= ticket.block <= blocks:
            raise DemoDataError(f"{entry.where}: block must be 1-{blocks}")
        if ticket.reporter not in _REPORTERS:
            raise DemoDataError(f"{entry.where}: reporter must be one of {', '.join(_REPORTERS)}")
        known = {t.key for t in tickets}
        if ticket.key in known:
            raise DemoDataError(f"{entry.where}: the key is used twice")
        for step in ticket.steps:
            if step.original and step.original not in known:
                raise DemoDataError(f"{entry.where}: original {step.original!r} must be a ticket before it")
        tickets.append(ticket)
    return tuple(tickets)


UNITS = load_units(WANLOU / "units.csv")
UNITS_BY_CODE: Mapping[str, UnitSpec] = {u.code: u for u in UNITS}
# The street center of each kind (a category routed to a center goes to the ticket's street's one).
CENTERS: Mapping[int, str] = {u.kind: u.code for u in UNITS if u.kind != pb.UNIT_KIND_DEPARTMENT}
CATEGORIES = load_categories(WANLOU / "categories.toml", UNITS_BY_CODE)
CATEGORIES_BY_CODE: Mapping[str, CategorySpec] = {c.code: c for c in CATEGORIES}
TICKETS = load_tickets(
    WANLOU / "tickets.toml", UNITS_BY_CODE, CATEGORIES_BY_CODE, sum(c.blocks for c in PLAN.communities)
)
TICKETS_BY_KEY: Mapping[str, DemoTicket] = {t.key: t for t in TICKETS}


def demo_residents(files: DemoFiles) -> dict[int, Resident]:
    """The resident who reports for each block that has resident reports in `TICKETS`."""
    return block_residents(files, PLAN, {t.block for t in TICKETS if t.reporter == "resident"})


# ------------------------------------------------------------------------------------- requests


def unit_message(unit: UnitSpec) -> pb.Unit:
    return pb.Unit(code=unit.code, display_name=unit.display_name, kind=unit.kind, node=unit.node)


def category_message(c: CategorySpec) -> pb.Category:
    return pb.Category(
        code=c.code,
        display_name=c.display_name,
        group=c.group,
        description=c.description,
        keywords=list(c.keywords),
        default_unit=f"units/{c.default_unit}" if c.default_unit else "",
        default_center=c.default_center,
        priority=c.priority,
        matter_class=c.matter_class,
        kind=c.kind,
        public=c.public,
        attributes=[
            pb.AttributeDefinition(
                code=a.code,
                display_name=a.display_name,
                description=a.description,
                type=a.type,
                required=a.required,
                options=[pb.AttributeOption(key=k, display_name=n) for k, n in a.options],
            )
            for a in c.attributes
        ],
        sla=pb.SlaPolicy(
            acknowledge_within=duration(c.sla.acknowledge_within),
            resolve_within=duration(c.sla.resolve_within),
            clock=pb.SLA_CLOCK_CALENDAR if c.sla.calendar_clock else pb.SLA_CLOCK_WORKING_HOURS,
            escalate_on_acknowledge_breach=c.sla.escalate_on_acknowledge_breach,
        ),
        active=True,
    )


# A few points around a block's deepest point, in degrees (100 m is about 0.0009 degrees here).
_NUDGES = ((0.0, 0.0), (0.0006, 0.0005), (-0.0005, 0.0006), (0.0005, -0.0006), (-0.0006, -0.0004))
_DUPLICATES = frozenset(t.key for t in TICKETS if any(s.action == pb.ACTION_MERGE for s in t.steps))


def ticket_point(ticket: DemoTicket, place: BlockPlace) -> tuple[float, float]:
    """Where the ticket is: near the block's deepest point, and always well inside the block."""
    index = ticket.nudge or int(ticket.key.removeprefix("t")) % len(_NUDGES)
    dlat, dlng = _NUDGES[index % len(_NUDGES)]
    if ticket.key in _DUPLICATES:
        dlat, dlng = dlat + 0.00004, dlng + 0.00003  # about 5 m from the original
    lat, lng = round(place.point[0] + dlat, 6), round(place.point[1] + dlng, 6)
    return (lat, lng) if place.contains(lat, lng) else place.point


def ticket_address(ticket: DemoTicket, place: BlockPlace) -> str:
    if ticket.building is None or not place.buildings:
        lane = place.lanes[place.number % len(place.lanes)]
        return f"{PLAN.street[1]}{place.community}{lane}{ticket.spot}"
    return place.buildings[ticket.building % len(place.buildings)][1] + ticket.spot


def _attribute_value(value: str, ticket: DemoTicket, place: BlockPlace, now: dt.datetime) -> str:
    if value == "{building}":
        return place.buildings[(ticket.building or 0) % len(place.buildings)][0]
    if value.startswith("@"):  # "@-1 21:40": yesterday at 21:40 China Standard Time
        days, clock = value[1:].split()
        hh, mm = (int(x) for x in clock.split(":"))
        day = now.astimezone(CST).date() + dt.timedelta(days=int(days))
        moment = dt.datetime.combine(day, dt.time(hh, mm), CST)
        if moment > now:  # "today at 09:10" before 09:10: the day before
            moment -= dt.timedelta(days=1)
        return moment.isoformat()
    return value


def ticket_message(ticket: DemoTicket, place: BlockPlace, now: dt.datetime) -> pb.Ticket:
    """The ticket as a CreateTicketRequest carries it; `now` anchors relative attribute times."""
    lat, lng = ticket_point(ticket, place)
    message = pb.Ticket(
        category=f"categories/{ticket.category}",
        source=ticket.source,
        title=ticket.title,
        description=ticket.description,
        location=pb.Location(
            latitude=lat, longitude=lng, has_point=True, address=ticket_address(ticket, place)
        ),
        attributes=[
            pb.TicketAttribute(code=code, values=[_attribute_value(v, ticket, place, now) for v in values])
            for code, values in ticket.attributes
        ],
    )
    if ticket.contact:
        message.contact.display_name, message.contact.phone = ticket.contact
    return message
