"""JSON shapes of the tickets REST resources and their conversion to and from protobuf messages.

References in JSON are short: a ticket by its `id`, a category or unit by its `code`, a household by
its id, a person by `users/{id}` (or `serviceAccounts/{id}` for a reporter that is a system). Bodies
also accept the full resource name (`categories/lift-failure`, `units/wanlou-rapid`, `tickets/{id}`,
`households/{id}`). Region nodes are paths with slashes in JSON (with the `ref`, dots, beside them for
URLs), and either separator in bodies. Enums are lower-case names without their prefix
(`in_progress`, `rapid_response`, `acknowledge`), durations are seconds, times RFC 3339 in UTC.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from google.protobuf import duration_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from gateway.blocks_resources import (
    USER_PATTERN,
    DisplayName,
    NodePath,
    ref_of,
)
from gateway.enums import ProtoEnums
from gateway.problems import Problem
from gateway.resources import time
from gov.tickets.v1 import tickets_pb2 as pb

_CODE = r"[a-z0-9][a-z0-9-]{0,39}"
CODE_PATTERN = rf"^{_CODE}$"
"""A category or unit code (1-40 of a-z, 0-9 and '-'): `lift-failure`, `wanlou-rapid`."""
CODE_MAX_LENGTH = 40
ATTRIBUTE_CODE_PATTERN = r"^[a-z0-9][a-z0-9_]{0,39}$"
MAX_SLA_SECONDS = 365 * 24 * 3600
MAX_ATTRIBUTES = 30


def _short(collection: str) -> AfterValidator:
    """A validator: `collection/{x}` or `x` -> `x`."""

    def strip(value: str) -> str:
        return value.removeprefix(f"{collection}/")

    return AfterValidator(strip)


def _user(value: str) -> str:
    return value if value.startswith("users/") else f"users/{value}"


def short(name: str, collection: str) -> str | None:
    """`units/wanlou-rapid` -> `wanlou-rapid`; empty -> None."""
    return name.removeprefix(f"{collection}/") or None


def path(node: str) -> str:
    return node.removeprefix("nodes/")


def _name(collection: str, value: str | None) -> str:
    return f"{collection}/{value}" if value else ""


# ----------------------------------------------------------------------------- enums


class UnitKindName(StrEnum):
    comprehensive_guidance = "comprehensive_guidance"
    livelihood = "livelihood"
    rapid_response = "rapid_response"
    economic_development = "economic_development"
    department = "department"


class PriorityName(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class MatterClassName(StrEnum):
    public = "public"
    co_handled = "co_handled"
    self_handled = "self_handled"


class TicketKindName(StrEnum):
    general = "general"
    dispute = "dispute"


class AttributeTypeName(StrEnum):
    string = "string"
    number = "number"
    datetime = "datetime"
    text = "text"
    single_value_list = "single_value_list"
    multi_value_list = "multi_value_list"


class SlaClockName(StrEnum):
    working_hours = "working_hours"
    calendar = "calendar"


class TicketStateName(StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"
    merged = "merged"
    escalated = "escalated"
    dispatched = "dispatched"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


class TicketSourceName(StrEnum):
    resident = "resident"
    patrol = "patrol"
    visit = "visit"
    hotline = "hotline"
    deliberation = "deliberation"
    service = "service"


class UnitRoleName(StrEnum):
    lead = "lead"
    assisting = "assisting"


class UnitStatusName(StrEnum):
    dispatched = "dispatched"
    acknowledged = "acknowledged"
    returned = "returned"


class MediationOutcomeName(StrEnum):
    settled = "settled"
    not_settled = "not_settled"


class ActionName(StrEnum):
    accept = "accept"
    reject = "reject"
    merge = "merge"
    escalate = "escalate"
    accept_escalation = "accept_escalation"
    dispatch = "dispatch"
    acknowledge = "acknowledge"
    return_ = "return"
    start = "start"
    resolve = "resolve"
    rate = "rate"
    close = "close"
    reopen = "reopen"
    submit = "submit"  # timeline only: the report itself


class TransitionActionName(StrEnum):
    """The actions a client may take (every action but `submit`, which only the timeline shows)."""

    accept = "accept"
    reject = "reject"
    merge = "merge"
    escalate = "escalate"
    accept_escalation = "accept_escalation"
    dispatch = "dispatch"
    acknowledge = "acknowledge"
    return_ = "return"
    start = "start"
    resolve = "resolve"
    rate = "rate"
    close = "close"
    reopen = "reopen"


class DayKindName(StrEnum):
    holiday = "holiday"
    workday = "workday"


# JSON enum -> (protobuf enum, value-name prefix).
PROTO_ENUMS: dict[type[StrEnum], tuple[EnumTypeWrapper, str]] = {
    UnitKindName: (pb.UnitKind, "UNIT_KIND"),
    PriorityName: (pb.Priority, "PRIORITY"),
    MatterClassName: (pb.MatterClass, "MATTER_CLASS"),
    TicketKindName: (pb.TicketKind, "TICKET_KIND"),
    AttributeTypeName: (pb.AttributeType, "ATTRIBUTE_TYPE"),
    SlaClockName: (pb.SlaClock, "SLA_CLOCK"),
    TicketStateName: (pb.TicketState, "TICKET_STATE"),
    TicketSourceName: (pb.TicketSource, "TICKET_SOURCE"),
    UnitRoleName: (pb.UnitRole, "UNIT_ROLE"),
    UnitStatusName: (pb.UnitStatus, "UNIT_STATUS"),
    MediationOutcomeName: (pb.MediationOutcome, "MEDIATION_OUTCOME"),
    ActionName: (pb.Action, "ACTION"),
    TransitionActionName: (pb.Action, "ACTION"),
    DayKindName: (pb.DayKind, "DAY_KIND"),
}

_ENUMS = ProtoEnums(PROTO_ENUMS)
to_pb = _ENUMS.to_pb
from_pb = _ENUMS.from_pb


# ----------------------------------------------------------------------------- durations


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def seconds(message: Message, field: str) -> float | None:
    """A Duration field in seconds; None when the field is not set."""
    if not message.HasField(field):
        return None
    d = getattr(message, field)
    return d.seconds + d.nanos / 1e9


# ----------------------------------------------------------------------------- field types

Code = Annotated[str, StringConstraints(max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN)]
CategoryRef = Annotated[
    str,
    StringConstraints(max_length=CODE_MAX_LENGTH + 11, pattern=rf"^(categories/)?{_CODE}$"),
    _short("categories"),
]
UnitRef = Annotated[
    str, StringConstraints(max_length=CODE_MAX_LENGTH + 6, pattern=rf"^(units/)?{_CODE}$"), _short("units")
]
TicketRef = Annotated[
    str, StringConstraints(max_length=72, pattern=r"^(tickets/)?[A-Za-z0-9_-]{1,64}$"), _short("tickets")
]
HouseholdRef = Annotated[
    str,
    StringConstraints(max_length=75, pattern=r"^(households/)?[A-Za-z0-9_-]{1,64}$"),
    _short("households"),
]
UserRef = Annotated[str, StringConstraints(max_length=70, pattern=USER_PATTERN), AfterValidator(_user)]
Title = Annotated[str, StringConstraints(max_length=200)]
Text = Annotated[str, StringConstraints(max_length=4000)]
Note = Annotated[str, StringConstraints(max_length=2000)]
Reason = Annotated[str, StringConstraints(max_length=500)]
Comment = Annotated[str, StringConstraints(max_length=1000)]
Address = Annotated[str, StringConstraints(max_length=300)]
MediaUris = Annotated[
    list[Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://\S+$")]],
    Field(max_length=10, description="http(s) links to photos or videos already uploaded"),
]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=32)]
SlaSeconds = Annotated[float, Field(ge=1, le=MAX_SLA_SECONDS, allow_inf_nan=False)]
RequiredName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# ----------------------------------------------------------------------------- units


class Unit(BaseModel):
    code: str
    name: str = Field(description="Resource name, `units/{code}`")
    display_name: str
    kind: UnitKindName | None
    node: str = Field(description="Path of the street or district the unit serves")
    node_ref: str = Field(description="The same path with dots, for URLs")
    create_time: dt.datetime | None

    @classmethod
    def of(cls, u: pb.Unit) -> Unit:
        return cls(
            code=u.code or u.name.removeprefix("units/"),
            name=u.name,
            display_name=u.display_name,
            kind=from_pb(UnitKindName, u.kind),
            node=path(u.node),
            node_ref=ref_of(u.node),
            create_time=time(u.create_time),
        )


class UnitPage(BaseModel):
    items: list[Unit]
    next_page_token: str = ""


class NewUnit(BaseModel):
    code: Code = Field(examples=["wanlou-rapid"])
    display_name: DisplayName = Field(examples=["万楼街道快速处置中心"])
    kind: UnitKindName
    node: NodePath = Field(
        description="Path of the street or district it serves (slashes or dots)", examples=["yuhu/wanlou"]
    )

    def to_pb(self) -> pb.Unit:
        return pb.Unit(code=self.code, display_name=self.display_name, kind=to_pb(self.kind), node=self.node)


class UnitMember(BaseModel):
    name: str = Field(description="`units/{code}/members/{user id}`")
    unit: str = Field(description="Code of the unit")
    user: str = Field(description="`users/{id}`")
    create_time: dt.datetime | None

    @classmethod
    def of(cls, m: pb.UnitMember) -> UnitMember:
        return cls(
            name=m.name,
            unit=m.name.removeprefix("units/").split("/", 1)[0],
            user=m.user,
            create_time=time(m.create_time),
        )


class UnitMemberPage(BaseModel):
    items: list[UnitMember]
    next_page_token: str = ""


class NewUnitMember(BaseModel):
    user: UserRef = Field(description="`users/{id}` or the bare id", examples=["users/0f6c..."])


# ----------------------------------------------------------------------------- categories


class AttributeOption(BaseModel):
    key: str
    display_name: str


class AttributeDefinition(BaseModel):
    code: str
    display_name: str
    description: str
    type: AttributeTypeName | None
    required: bool
    options: list[AttributeOption] = Field(description="List types only")

    @classmethod
    def of(cls, a: pb.AttributeDefinition) -> AttributeDefinition:
        return cls(
            code=a.code,
            display_name=a.display_name,
            description=a.description,
            type=from_pb(AttributeTypeName, a.type),
            required=a.required,
            options=[AttributeOption(key=o.key, display_name=o.display_name) for o in a.options],
        )


class SlaPolicy(BaseModel):
    acknowledge_within_seconds: float | None = Field(
        description="From the report to the lead unit reporting in"
    )
    resolve_within_seconds: float | None = Field(
        description="From the report (or a reopening, or the district's acceptance) to resolution"
    )
    clock: SlaClockName | None = Field(
        description="`working_hours` (Mon-Fri 08:30-12:00 and 14:00-17:30 China Standard Time, on the "
        "working calendar) or `calendar` (round the clock)"
    )
    escalate_on_acknowledge_breach: bool = Field(
        description="Escalate to the district automatically when the acknowledge deadline passes"
    )

    @classmethod
    def of(cls, s: pb.SlaPolicy) -> SlaPolicy:
        return cls(
            acknowledge_within_seconds=seconds(s, "acknowledge_within"),
            resolve_within_seconds=seconds(s, "resolve_within"),
            clock=from_pb(SlaClockName, s.clock),
            escalate_on_acknowledge_breach=s.escalate_on_acknowledge_breach,
        )


class NewAttributeOption(BaseModel):
    key: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(examples=["stuck"])
    display_name: DisplayName = Field(examples=["困人"])


class NewAttributeDefinition(BaseModel):
    code: Annotated[str, StringConstraints(max_length=40, pattern=ATTRIBUTE_CODE_PATTERN)] = Field(
        examples=["floor"]
    )
    display_name: RequiredName = Field(examples=["楼层"])
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    type: AttributeTypeName
    required: bool = False
    options: Annotated[list[NewAttributeOption], Field(max_length=100)] = Field(
        default_factory=list, description="List types only, and required for them"
    )

    def to_pb(self) -> pb.AttributeDefinition:
        return pb.AttributeDefinition(
            code=self.code,
            display_name=self.display_name,
            description=self.description,
            type=to_pb(self.type),
            required=self.required,
            options=[pb.AttributeOption(key=o.key, display_name=o.display_name) for o in self.options],
        )


class NewSlaPolicy(BaseModel):
    """The whole policy: a PATCH replaces it."""

    acknowledge_within_seconds: SlaSeconds = Field(
        description="From the report to the lead unit reporting in (at most resolve_within_seconds)",
        examples=[7200],
    )
    resolve_within_seconds: SlaSeconds = Field(
        description="From the report (or a reopening, or the district's acceptance) to resolution",
        examples=[57600],
    )
    clock: SlaClockName = Field(examples=["working_hours"])
    escalate_on_acknowledge_breach: bool = False

    @model_validator(mode="after")
    def _order(self) -> NewSlaPolicy:
        if self.acknowledge_within_seconds > self.resolve_within_seconds:
            raise ValueError("acknowledge_within_seconds cannot be longer than resolve_within_seconds")
        return self

    def to_pb(self) -> pb.SlaPolicy:
        return pb.SlaPolicy(
            acknowledge_within=duration(self.acknowledge_within_seconds),
            resolve_within=duration(self.resolve_within_seconds),
            clock=to_pb(self.clock),
            escalate_on_acknowledge_breach=self.escalate_on_acknowledge_breach,
        )


class Category(BaseModel):
    code: str = Field(description="Also the Open311 `service_code`")
    name: str = Field(description="Resource name, `categories/{code}`")
    display_name: str
    group: str
    description: str
    keywords: list[str]
    default_unit: str | None = Field(description="Code of the unit it routes to, if a named one")
    default_center: UnitKindName | None = Field(
        description="Or the center of the ticket's street it routes to"
    )
    priority: PriorityName | None
    matter_class: MatterClassName | None
    kind: TicketKindName | None
    attributes: list[AttributeDefinition] = Field(description="What a reporter fills in")
    sla: SlaPolicy | None
    active: bool = Field(description="Inactive categories take no new tickets")
    public: bool = Field(
        description="Anyone may read its tickets' public fields (Open311 `GET requests` without a key)"
    )
    create_time: dt.datetime | None
    update_time: dt.datetime | None

    @classmethod
    def of(cls, c: pb.Category) -> Category:
        return cls(
            code=c.code or c.name.removeprefix("categories/"),
            name=c.name,
            display_name=c.display_name,
            group=c.group,
            description=c.description,
            keywords=list(c.keywords),
            default_unit=short(c.default_unit, "units"),
            default_center=from_pb(UnitKindName, c.default_center),
            priority=from_pb(PriorityName, c.priority),
            matter_class=from_pb(MatterClassName, c.matter_class),
            kind=from_pb(TicketKindName, c.kind),
            attributes=[AttributeDefinition.of(a) for a in c.attributes],
            sla=SlaPolicy.of(c.sla) if c.HasField("sla") else None,
            active=c.active,
            public=c.public,
            create_time=time(c.create_time),
            update_time=time(c.update_time),
        )


class CategoryPage(BaseModel):
    items: list[Category]
    next_page_token: str = ""


Keywords = Annotated[list[Keyword], Field(max_length=30)]
Attributes = Annotated[list[NewAttributeDefinition], Field(max_length=MAX_ATTRIBUTES)]
Group = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(max_length=2000)]


class NewCategory(BaseModel):
    """A new category is active; routing names a unit or a center of the street, not both."""

    code: Code = Field(description="Immutable; also the Open311 `service_code`", examples=["lift-failure"])
    display_name: RequiredName = Field(examples=["电梯故障"])
    group: Group = Field(examples=["物业与电梯"])
    description: Description = ""
    keywords: Keywords = Field(default_factory=list, examples=[["电梯", "困人"]])
    default_unit: UnitRef | None = Field(None, description="Code of a named unit to route to")
    default_center: UnitKindName | None = Field(
        None, description="Or one of the four centers of the ticket's street", examples=["rapid_response"]
    )
    priority: PriorityName
    matter_class: MatterClassName
    kind: TicketKindName | None = Field(
        None, description="Default `general`; `dispute` tickets resolve with a mediation outcome"
    )
    attributes: Attributes = Field(default_factory=list, description="What a reporter fills in")
    sla: NewSlaPolicy
    public: bool = Field(
        False,
        description="Anyone may read its tickets' public fields (Open311 without a key); keep it false "
        "for disputes, welfare, elderly care and anything about a person",
    )

    def to_pb(self) -> pb.Category:
        return pb.Category(
            code=self.code,
            display_name=self.display_name,
            group=self.group,
            description=self.description,
            keywords=self.keywords,
            default_unit=_name("units", self.default_unit),
            default_center=to_pb(self.default_center),
            priority=to_pb(self.priority),
            matter_class=to_pb(self.matter_class),
            kind=to_pb(self.kind),
            attributes=[a.to_pb() for a in self.attributes],
            sla=self.sla.to_pb(),
            public=self.public,
        )


class CategoryPatch(BaseModel):
    """Only the fields present are changed. `null` clears description, default_unit and default_center;
    `keywords`, `attributes` and `sla` replace the whole value; `active: false` takes no new tickets;
    `public` opens (or closes) its tickets to readers without a key."""

    display_name: RequiredName | None = None
    group: Group | None = None
    description: Description | None = None
    keywords: Keywords | None = None
    default_unit: UnitRef | None = None
    default_center: UnitKindName | None = None
    priority: PriorityName | None = None
    matter_class: MatterClassName | None = None
    attributes: Attributes | None = None
    sla: NewSlaPolicy | None = None
    active: bool | None = None
    public: bool | None = None

    def to_pb(self, code: str) -> tuple[pb.Category, list[str]]:
        """The category and its update mask."""
        fields = self.model_fields_set
        if not fields:
            raise Problem(400, "name at least one field to change", slug="invalid-argument")
        for name in (
            "display_name",
            "group",
            "keywords",
            "priority",
            "matter_class",
            "attributes",
            "sla",
            "active",
            "public",
        ):
            if name in fields and getattr(self, name) is None:
                raise Problem(400, f"{name} cannot be null", slug="invalid-argument")
        category = pb.Category(
            name=f"categories/{code}",
            code=code,
            display_name=self.display_name or "",
            group=self.group or "",
            description=self.description or "",
            keywords=self.keywords or (),
            default_unit=_name("units", self.default_unit),
            default_center=to_pb(self.default_center),
            priority=to_pb(self.priority),
            matter_class=to_pb(self.matter_class),
            attributes=[a.to_pb() for a in self.attributes or ()],
            sla=self.sla.to_pb() if self.sla else None,
            active=bool(self.active),
            public=bool(self.public),
        )
        return category, sorted(fields)


# ----------------------------------------------------------------------------- tickets


class Location(BaseModel):
    latitude: float | None = Field(description="WGS84; null when the report has no point")
    longitude: float | None
    household: str | None = Field(description="Id of the household the matter belongs to")
    address: str

    @classmethod
    def of(cls, loc: pb.Location) -> Location:
        return cls(
            latitude=loc.latitude if loc.has_point else None,
            longitude=loc.longitude if loc.has_point else None,
            household=short(loc.household, "households"),
            address=loc.address,
        )


class NewLocation(BaseModel):
    """A point (resolved to its block), or a household (its block), and/or a free-text address."""

    latitude: Annotated[float, Field(ge=-90, le=90)] | None = Field(None, examples=[27.8512])
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = Field(None, examples=[112.9034])
    household: HouseholdRef | None = Field(None, description="Household id (or `households/{id}`)")
    address: Address = Field("", examples=["窑湾社区3栋2单元"])

    @model_validator(mode="after")
    def _point(self) -> NewLocation:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together")
        return self

    def to_pb(self) -> pb.Location:
        has_point = self.latitude is not None and self.longitude is not None
        return pb.Location(
            latitude=self.latitude or 0.0,
            longitude=self.longitude or 0.0,
            has_point=has_point,
            household=_name("households", self.household),
            address=self.address,
        )


class Contact(BaseModel):
    display_name: str
    phone: str = Field(description="Shown to staff only")


class TicketAttribute(BaseModel):
    code: str
    values: list[str] = Field(description="One value, or several for a multi-value list")


class NewContact(BaseModel):
    display_name: DisplayName = Field("", examples=["王先生"])
    phone: Annotated[str, StringConstraints(max_length=32)] = Field(
        "", description="Shown to staff only", examples=["13812345678"]
    )


class NewTicketAttribute(BaseModel):
    code: Annotated[str, StringConstraints(pattern=ATTRIBUTE_CODE_PATTERN)] = Field(examples=["floor"])
    values: Annotated[list[Annotated[str, StringConstraints(max_length=2000)]], Field(max_length=50)] = Field(
        description="One value, or several for a multi-value list; numbers as decimals, datetimes RFC 3339",
        examples=[["7"]],
    )


class UnitAssignment(BaseModel):
    unit: str = Field(description="Code of the unit")
    role: UnitRoleName | None
    status: UnitStatusName | None
    reason: str | None = Field(description="Why it was returned")
    update_time: dt.datetime | None

    @classmethod
    def of(cls, a: pb.UnitAssignment) -> UnitAssignment:
        return cls(
            unit=a.unit.removeprefix("units/"),
            role=from_pb(UnitRoleName, a.role),
            status=from_pb(UnitStatusName, a.status),
            reason=a.reason or None,
            update_time=time(a.update_time),
        )


class Rating(BaseModel):
    score: int = Field(description="1-5")
    comment: str
    recorded_by: str = Field(description="The reporter, or the staff member who recorded it, `users/{id}`")
    time: dt.datetime | None

    @classmethod
    def of(cls, r: pb.Rating) -> Rating | None:
        if not r.score:
            return None
        return cls(score=r.score, comment=r.comment, recorded_by=r.recorded_by, time=time(r.time))


class Ticket(BaseModel):
    id: str
    name: str = Field(description="Resource name, `tickets/{id}`")
    category: str = Field(description="Code of the category")
    kind: TicketKindName | None
    state: TicketStateName | None
    source: TicketSourceName | None
    title: str
    description: str
    media_uris: list[str]
    location: Location
    node: str | None = Field(description="Path of the block (or node) the matter belongs to")
    node_ref: str | None = Field(description="The same path with dots, for URLs")
    street: str | None = Field(description="Path of the street that owns it")
    district: str | None
    reporter: str = Field(description="`users/{id}` or `serviceAccounts/{id}`")
    contact: Contact | None
    attributes: list[TicketAttribute]
    priority: PriorityName | None
    matter_class: MatterClassName | None
    suggested_unit: str | None = Field(description="Code of the unit the category routes to")
    lead_unit: str | None = Field(description="Code of the lead unit once dispatched")
    units: list[UnitAssignment]
    escalated: bool = Field(description="Owned by the district since it accepted an escalation")
    acknowledge_deadline: dt.datetime | None
    resolve_deadline: dt.datetime | None
    expected_resolve_time: dt.datetime | None
    acknowledge_overdue: bool
    resolve_overdue: bool
    acknowledge_time: dt.datetime | None
    resolve_time: dt.datetime | None
    close_time: dt.datetime | None
    resolution: str | None = Field(description="The result note")
    resolution_media_uris: list[str]
    mediation_outcome: MediationOutcomeName | None = Field(description="Disputes only")
    rating: Rating | None
    merged_into: str | None = Field(description="Id of the ticket this one was merged into")
    reject_reason: str | None
    possible_duplicates: list[str] = Field(description="Ids of likely duplicates, for the dispatcher")
    create_time: dt.datetime | None
    update_time: dt.datetime | None

    @classmethod
    def of(cls, t: pb.Ticket) -> Ticket:
        contact = (
            Contact(display_name=t.contact.display_name, phone=t.contact.phone)
            if t.contact.display_name or t.contact.phone
            else None
        )
        return cls(
            id=t.name.removeprefix("tickets/"),
            name=t.name,
            category=t.category.removeprefix("categories/"),
            kind=from_pb(TicketKindName, t.kind),
            state=from_pb(TicketStateName, t.state),
            source=from_pb(TicketSourceName, t.source),
            title=t.title,
            description=t.description,
            media_uris=list(t.media_uris),
            location=Location.of(t.location),
            node=path(t.node) or None,
            node_ref=ref_of(t.node) or None,
            street=path(t.street) or None,
            district=path(t.district) or None,
            reporter=t.reporter,
            contact=contact,
            attributes=[TicketAttribute(code=a.code, values=list(a.values)) for a in t.attributes],
            priority=from_pb(PriorityName, t.priority),
            matter_class=from_pb(MatterClassName, t.matter_class),
            suggested_unit=short(t.suggested_unit, "units"),
            lead_unit=short(t.lead_unit, "units"),
            units=[UnitAssignment.of(a) for a in t.units],
            escalated=t.escalated,
            acknowledge_deadline=time(t.acknowledge_deadline),
            resolve_deadline=time(t.resolve_deadline),
            expected_resolve_time=time(t.expected_resolve_time),
            acknowledge_overdue=t.acknowledge_overdue,
            resolve_overdue=t.resolve_overdue,
            acknowledge_time=time(t.acknowledge_time),
            resolve_time=time(t.resolve_time),
            close_time=time(t.close_time),
            resolution=t.resolution or None,
            resolution_media_uris=list(t.resolution_media_uris),
            mediation_outcome=from_pb(MediationOutcomeName, t.mediation_outcome),
            rating=Rating.of(t.rating),
            merged_into=short(t.merged_into, "tickets"),
            reject_reason=t.reject_reason or None,
            possible_duplicates=[d.removeprefix("tickets/") for d in t.possible_duplicates],
            create_time=time(t.create_time),
            update_time=time(t.update_time),
        )


class TicketPage(BaseModel):
    items: list[Ticket]
    next_page_token: str = ""


class NewTicket(BaseModel):
    category: CategoryRef = Field(description="Code of the category", examples=["lift-failure"])
    source: TicketSourceName | None = Field(None, description="Default: from who reports it")
    title: Title = Field("", examples=["3栋电梯困人"])
    description: Text = Field("", examples=["3栋2单元电梯停在7楼，有人被困"])
    media_uris: MediaUris = Field(default_factory=list)
    location: NewLocation | None = None
    node: NodePath | None = Field(
        None,
        description="For an address-only report: the node (slashes or dots) the matter belongs to",
        examples=["yuhu/wanlou/yaowan/b07"],
    )
    contact: NewContact | None = Field(None, description="Who to tell, when the reporter is not a user")
    attributes: Annotated[list[NewTicketAttribute], Field(max_length=50)] = Field(
        default_factory=list, description="Values of the category's attributes"
    )

    def to_pb(self) -> pb.Ticket:
        return pb.Ticket(
            category=f"categories/{self.category}",
            source=to_pb(self.source),
            title=self.title,
            description=self.description,
            media_uris=self.media_uris,
            location=self.location.to_pb() if self.location else None,
            node=self.node or "",
            contact=pb.Contact(display_name=self.contact.display_name, phone=self.contact.phone)
            if self.contact
            else None,
            attributes=[pb.TicketAttribute(code=a.code, values=a.values) for a in self.attributes],
        )


class Transition(BaseModel):
    """An action and the fields it takes; the service refuses an action the ticket's state or your role
    does not allow (409 or 403) and names a missing field (400)."""

    action: TransitionActionName = Field(examples=["acknowledge"])
    note: Note = Field("", description="Resolve: the result (required)")
    reason: Reason = Field("", description="Reject, merge, escalate, return, reopen: why (required)")
    lead_unit: UnitRef | None = Field(None, description="Dispatch: default the ticket's suggested unit")
    assisting_units: Annotated[list[UnitRef], Field(max_length=20)] = Field(
        default_factory=list, description="Dispatch"
    )
    unit: UnitRef | None = Field(
        None, description="Unit actions: the unit you act for, if you are in several"
    )
    original: TicketRef | None = Field(None, description="Merge: id of the original ticket")
    media_uris: MediaUris = Field(default_factory=list, description="Resolve")
    mediation_outcome: MediationOutcomeName | None = Field(None, description="Resolve a dispute")
    score: Annotated[int, Field(ge=1, le=5)] | None = Field(None, description="Rate: 1-5")
    comment: Comment = Field("", description="Rate")

    def to_pb(self, ticket_id: str) -> pb.TransitionTicketRequest:
        return pb.TransitionTicketRequest(
            name=f"tickets/{ticket_id}",
            action=to_pb(self.action),
            note=self.note,
            reason=self.reason,
            lead_unit=_name("units", self.lead_unit),
            assisting_units=[f"units/{u}" for u in self.assisting_units],
            unit=_name("units", self.unit),
            original=_name("tickets", self.original),
            media_uris=self.media_uris,
            mediation_outcome=to_pb(self.mediation_outcome),
            score=self.score or 0,
            comment=self.comment,
        )


class NewRating(BaseModel):
    score: Annotated[int, Field(ge=1, le=5)] = Field(examples=[5])
    comment: Comment = Field("", examples=["处理很及时"])

    def to_pb(self, ticket_id: str) -> pb.TransitionTicketRequest:
        return pb.TransitionTicketRequest(
            name=f"tickets/{ticket_id}", action=pb.ACTION_RATE, score=self.score, comment=self.comment
        )


class TimelineEntry(BaseModel):
    seq: int | None = Field(description="Position in the ticket's timeline")
    name: str = Field(description="`tickets/{id}/timeline/{seq}`")
    action: ActionName | None
    actor: str = Field(description="`users/{id}`, `serviceAccounts/{id}`, or `system`")
    time: dt.datetime | None
    from_state: TicketStateName | None
    to_state: TicketStateName | None
    note: str
    unit: str | None = Field(description="Code of the unit acting (acknowledge, return, start, resolve)")
    details: dict[str, str] = Field(
        description="What the action set: the units of a dispatch, the rating ..."
    )

    @classmethod
    def of(cls, e: pb.TimelineEntry) -> TimelineEntry:
        seq = e.name.rsplit("/", 1)[-1]
        return cls(
            seq=int(seq) if seq.isdigit() else None,
            name=e.name,
            action=from_pb(ActionName, e.action),
            actor=e.actor,
            time=time(e.time),
            from_state=from_pb(TicketStateName, e.from_state),
            to_state=from_pb(TicketStateName, e.to_state),
            note=e.note,
            unit=short(e.unit, "units"),
            details=dict(e.details),
        )


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next_page_token: str = ""


# ----------------------------------------------------------------------------- statistics


class TicketStatistics(BaseModel):
    node: str = Field(description="Path of the node: tickets at or below it")
    total: int
    by_state: dict[TicketStateName, int] = Field(description="Every state, with 0 for none")
    completed: int = Field(description="Resolved or closed")
    completion_rate: float = Field(description="completed / (total - rejected - merged); 0 when none")
    completed_on_time: int
    on_time_rate: float = Field(description="completed by the resolve deadline / completed")
    completed_same_day: int
    same_day_rate: float = Field(description="completed the day reported (China Standard Time) / completed")
    rated: int
    satisfied: int = Field(description="Rated 4 or 5")
    satisfaction_rate: float = Field(description="satisfied / rated")
    disputes_mediated: int
    disputes_settled: int
    mediation_success_rate: float = Field(description="disputes settled / disputes resolved with an outcome")
    median_time_to_acknowledge_seconds: float | None = Field(
        description="Report to the lead unit's acknowledgement, wall-clock; within 2.5%"
    )
    p90_time_to_acknowledge_seconds: float | None
    median_time_to_resolve_seconds: float | None = Field(description="Report to resolution, wall-clock")
    p90_time_to_resolve_seconds: float | None
    overdue: int = Field(description="Tickets that breached a deadline")

    @classmethod
    def of(cls, s: pb.TicketStatistics, node: str) -> TicketStatistics:
        by_state = dict.fromkeys(TicketStateName, 0)
        for count in s.by_state:
            state = from_pb(TicketStateName, count.state)
            if state is not None:
                by_state[state] = count.count
        return cls(
            node=node,
            total=s.total,
            by_state=by_state,
            completed=s.completed,
            completion_rate=s.completion_rate,
            completed_on_time=s.completed_on_time,
            on_time_rate=s.on_time_rate,
            completed_same_day=s.completed_same_day,
            same_day_rate=s.same_day_rate,
            rated=s.rated,
            satisfied=s.satisfied,
            satisfaction_rate=s.satisfaction_rate,
            disputes_mediated=s.disputes_mediated,
            disputes_settled=s.disputes_settled,
            mediation_success_rate=s.mediation_success_rate,
            median_time_to_acknowledge_seconds=seconds(s, "median_time_to_acknowledge"),
            p90_time_to_acknowledge_seconds=seconds(s, "p90_time_to_acknowledge"),
            median_time_to_resolve_seconds=seconds(s, "median_time_to_resolve"),
            p90_time_to_resolve_seconds=seconds(s, "p90_time_to_resolve"),
            overdue=s.overdue,
        )


# ----------------------------------------------------------------------------- working calendar


class CalendarDay(BaseModel):
    date: str = Field(description="YYYY-MM-DD")
    kind: DayKindName | None = Field(
        description="`holiday` off, or `workday`: a weekend day worked (调休上班)"
    )
    name: str

    @classmethod
    def of(cls, d: pb.CalendarDay) -> CalendarDay:
        return cls(date=d.date, kind=from_pb(DayKindName, d.kind), name=d.display_name)


class NewCalendarDay(BaseModel):
    date: dt.date = Field(description="A day of the year in the URL", examples=["2025-01-28"])
    kind: DayKindName = Field(description="`holiday` off, or `workday`: a weekend day worked (调休上班)")
    name: Annotated[str, StringConstraints(max_length=40)] = Field("", examples=["春节"])

    def to_pb(self) -> pb.CalendarDay:
        return pb.CalendarDay(date=self.date.isoformat(), kind=to_pb(self.kind), display_name=self.name)


class CalendarYear(BaseModel):
    name: str = Field(description="`calendarYears/{year}`")
    year: int
    days: list[CalendarDay] = Field(
        description="Public holidays and make-up workdays; other weekdays work, weekends are off"
    )
    update_time: dt.datetime | None

    @classmethod
    def of(cls, c: pb.CalendarYear) -> CalendarYear:
        return cls(
            name=c.name,
            year=c.year,
            days=[CalendarDay.of(d) for d in c.days],
            update_time=time(c.update_time),
        )


class CalendarYearBody(BaseModel):
    """Replaces every holiday and make-up workday of the year."""

    days: Annotated[list[NewCalendarDay], Field(max_length=366)]

    def to_pb(self, year: int) -> pb.CalendarYear:
        return pb.CalendarYear(name=f"calendarYears/{year}", year=year, days=[d.to_pb() for d in self.days])
