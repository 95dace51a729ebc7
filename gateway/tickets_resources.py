"""JSON shapes of the tickets REST resources, declared over the protobuf messages (gateway.rest).

References in JSON are short: a ticket by its `id`, a category or unit by its `code`, a household by
its id, a person by `users/{id}` (or `serviceAccounts/{id}` for a reporter that is a system). Bodies
also accept the full resource name (`categories/lift-failure`, `units/wanlou-rapid`, `tickets/{id}`,
`households/{id}`). Region nodes are paths with slashes in JSON (with the `ref`, dots, beside them for
URLs), and either separator in bodies. Enums are lower-case names without their prefix
(`in_progress`, `rapid_response`, `acknowledge`), durations are seconds, times RFC 3339 in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

from google.protobuf.message import Message
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from gateway.blocks_resources import DisplayName, NodePath
from gateway.blocks_resources import HouseholdId as HouseholdRef
from gateway.blocks_resources import UserName as UserRef
from gateway.rest import Body, Named, Out, Proto, ProtoEnum, View, from_pb, patch_of, proto_enums, to_pb
from gateway.rest.names import node_path, path_out, ref_of, ref_out, short_out
from gov.tickets.v1 import tickets_pb2 as pb

_CODE = r"[a-z0-9][a-z0-9-]{0,39}"
CODE_PATTERN = rf"^{_CODE}$"
"""A category or unit code (1-40 of a-z, 0-9 and '-'): `lift-failure`, `wanlou-rapid`."""
CODE_MAX_LENGTH = 40
ATTRIBUTE_CODE_PATTERN = r"^[a-z0-9][a-z0-9_]{0,39}$"
MAX_SLA_SECONDS = 365 * 24 * 3600
MAX_ATTRIBUTES = 30

__all__ = ["from_pb", "to_pb"]


def _short(collection: str) -> AfterValidator:
    """A validator: `collection/{x}` or `x` -> `x`."""

    def strip(value: str) -> str:
        return value.removeprefix(f"{collection}/")

    return AfterValidator(strip)


# ----------------------------------------------------------------------------- enums


class UnitKindName(ProtoEnum, proto=pb.UnitKind): ...


class PriorityName(ProtoEnum, proto=pb.Priority): ...


class MatterClassName(ProtoEnum, proto=pb.MatterClass): ...


class TicketKindName(ProtoEnum, proto=pb.TicketKind): ...


class AttributeTypeName(ProtoEnum, proto=pb.AttributeType): ...


class SlaClockName(ProtoEnum, proto=pb.SlaClock): ...


class TicketStateName(ProtoEnum, proto=pb.TicketState): ...


class TicketSourceName(ProtoEnum, proto=pb.TicketSource): ...


class UnitRoleName(ProtoEnum, proto=pb.UnitRole): ...


class UnitStatusName(ProtoEnum, proto=pb.UnitStatus): ...


class MediationOutcomeName(ProtoEnum, proto=pb.MediationOutcome): ...


class ActionName(ProtoEnum, proto=pb.Action): ...


class TransitionActionName(ProtoEnum, proto=pb.Action, exclude={"submit"}):
    """The actions a client may take (every action but `submit`, which only the timeline shows)."""


class DayKindName(ProtoEnum, proto=pb.DayKind): ...


PROTO_ENUMS = proto_enums(
    UnitKindName,
    PriorityName,
    MatterClassName,
    TicketKindName,
    AttributeTypeName,
    SlaClockName,
    TicketStateName,
    TicketSourceName,
    UnitRoleName,
    UnitStatusName,
    MediationOutcomeName,
    ActionName,
    TransitionActionName,
    DayKindName,
)


# ----------------------------------------------------------------------------- field types

Code = Annotated[str, StringConstraints(max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN)]
CategoryRef = Annotated[
    str,
    StringConstraints(max_length=CODE_MAX_LENGTH + 11, pattern=rf"^(categories/)?{_CODE}$"),
    _short("categories"),
    Named("categories"),
]
UnitRef = Annotated[
    str,
    StringConstraints(max_length=CODE_MAX_LENGTH + 6, pattern=rf"^(units/)?{_CODE}$"),
    _short("units"),
    Named("units"),
]
TicketRef = Annotated[
    str,
    StringConstraints(max_length=72, pattern=r"^(tickets/)?[A-Za-z0-9_-]{1,64}$"),
    _short("tickets"),
    Named("tickets"),
]
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


class Unit(
    View,
    message=pb.Unit,
    fields={
        "code": Out(compute=lambda u: u.code or u.name.removeprefix("units/"), annotation=str),
        "name": "Resource name, `units/{code}`",
        "display_name": None,
        "kind": None,
        "node": Out(convert=node_path, description="Path of the street or district the unit serves"),
        "node_ref": Out("node", "The same path with dots, for URLs", convert=ref_of),
        "create_time": None,
    },
): ...


class UnitPage(View, item=Unit, source="units"): ...


class NewUnit(Body):
    code: Code = Field(examples=["wanlou-rapid"])
    display_name: DisplayName = Field(examples=["万楼街道快速处置中心"])
    kind: UnitKindName
    node: NodePath = Field(
        description="Path of the street or district it serves (slashes or dots)", examples=["yuhu/wanlou"]
    )


class UnitMember(
    View,
    message=pb.UnitMember,
    fields={
        "name": "`units/{code}/members/{user id}`",
        "unit": Out(
            compute=lambda m: m.name.removeprefix("units/").split("/", 1)[0],
            annotation=str,
            description="Code of the unit",
        ),
        "user": "`users/{id}`",
        "create_time": None,
    },
): ...


class UnitMemberPage(View, item=UnitMember, source="members"): ...


class NewUnitMember(Body):
    user: UserRef = Field(description="`users/{id}` or the bare id", examples=["users/0f6c..."])


# ----------------------------------------------------------------------------- categories


class AttributeOption(View, message=pb.AttributeOption, fields={"key": None, "display_name": None}): ...


class AttributeDefinition(
    View,
    message=pb.AttributeDefinition,
    fields={
        "code": None,
        "display_name": None,
        "description": None,
        "type": None,
        "required": None,
        "options": "List types only",
    },
): ...


class SlaPolicy(
    View,
    message=pb.SlaPolicy,
    fields={
        "acknowledge_within_seconds": "From the report to the lead unit reporting in",
        "resolve_within_seconds": "From the report (or a reopening, or the district's acceptance) "
        "to resolution",
        "clock": "`working_hours` (Mon-Fri 08:30-12:00 and 14:00-17:30 China Standard Time, on the "
        "working calendar) or `calendar` (round the clock)",
        "escalate_on_acknowledge_breach": "Escalate to the district automatically when the acknowledge "
        "deadline passes",
    },
): ...


class NewAttributeOption(Body):
    key: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(examples=["stuck"])
    display_name: DisplayName = Field(examples=["困人"])


class NewAttributeDefinition(Body):
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


class NewSlaPolicy(Body):
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


class Category(
    View,
    message=pb.Category,
    fields={
        "code": Out(
            compute=lambda c: c.code or c.name.removeprefix("categories/"),
            annotation=str,
            description="Also the Open311 `service_code`",
        ),
        "name": "Resource name, `categories/{code}`",
        "display_name": None,
        "group": None,
        "description": None,
        "keywords": None,
        "default_unit": short_out("units", "Code of the unit it routes to, if a named one"),
        "default_center": "Or the center of the ticket's street it routes to",
        "priority": None,
        "matter_class": None,
        "kind": None,
        "attributes": "What a reporter fills in",
        "sla": Out(nullable=True),
        "active": "Inactive categories take no new tickets",
        "public": "Anyone may read its tickets' public fields (Open311 `GET requests` without a key)",
        "create_time": None,
        "update_time": None,
    },
): ...


class CategoryPage(View, item=Category, source="categories"): ...


Keywords = Annotated[list[Keyword], Field(max_length=30)]
Attributes = Annotated[list[NewAttributeDefinition], Field(max_length=MAX_ATTRIBUTES)]
Group = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(max_length=2000)]


class NewCategory(Body):
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


CategoryPatch = patch_of(
    NewCategory,
    "CategoryPatch",
    fixed=("code", "kind"),
    extra={"active": bool},
    clearable=("description", "default_unit", "default_center"),
    doc="""Only the fields present are changed. `null` clears description, default_unit and default_center;
    `keywords`, `attributes` and `sla` replace the whole value; `active: false` takes no new tickets;
    `public` opens (or closes) its tickets to readers without a key.""",
)


# ----------------------------------------------------------------------------- tickets


def _point(coordinate: str) -> Out:
    return Out(
        compute=lambda loc: getattr(loc, coordinate) if loc.has_point else None,
        annotation=float | None,
        description="WGS84; null when the report has no point" if coordinate == "latitude" else None,
    )


class Location(
    View,
    message=pb.Location,
    fields={
        "latitude": _point("latitude"),
        "longitude": _point("longitude"),
        "household": short_out("households", "Id of the household the matter belongs to"),
        "address": None,
    },
): ...


class NewLocation(Body):
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

    def fill(self, message: Message, names: Iterable[str]) -> None:
        super().fill(message, names)
        message.has_point = self.latitude is not None and self.longitude is not None  # type: ignore[attr-defined]


class Contact(View, message=pb.Contact, fields={"display_name": None, "phone": "Shown to staff only"}): ...


class TicketAttribute(
    View,
    message=pb.TicketAttribute,
    fields={"code": None, "values": "One value, or several for a multi-value list"},
): ...


class NewContact(Body):
    display_name: DisplayName = Field("", examples=["王先生"])
    phone: Annotated[str, StringConstraints(max_length=32)] = Field(
        "", description="Shown to staff only", examples=["13812345678"]
    )


class NewTicketAttribute(Body):
    code: Annotated[str, StringConstraints(pattern=ATTRIBUTE_CODE_PATTERN)] = Field(examples=["floor"])
    values: Annotated[list[Annotated[str, StringConstraints(max_length=2000)]], Field(max_length=50)] = Field(
        description="One value, or several for a multi-value list; numbers as decimals, datetimes RFC 3339",
        examples=[["7"]],
    )


class UnitAssignment(
    View,
    message=pb.UnitAssignment,
    fields={
        "unit": Out(convert=lambda u: u.removeprefix("units/"), description="Code of the unit"),
        "role": None,
        "status": None,
        "reason": Out(description="Why it was returned", nullable=True),
        "update_time": None,
    },
): ...


class Rating(
    View,
    message=pb.Rating,
    fields={
        "score": "1-5",
        "comment": None,
        "recorded_by": "The reporter, or the staff member who recorded it, `users/{id}`",
        "time": None,
    },
): ...


class Ticket(
    View,
    message=pb.Ticket,
    fields={
        "id": Out("name", convert=lambda n: n.removeprefix("tickets/")),
        "name": "Resource name, `tickets/{id}`",
        "category": Out(convert=lambda c: c.removeprefix("categories/"), description="Code of the category"),
        "kind": None,
        "state": None,
        "source": None,
        "title": None,
        "description": None,
        "media_uris": None,
        "location": None,
        "node": path_out("Path of the block (or node) the matter belongs to"),
        "node_ref": ref_out("node", "The same path with dots, for URLs"),
        "street": path_out("Path of the street that owns it"),
        "district": path_out(),
        "reporter": "`users/{id}` or `serviceAccounts/{id}`",
        "contact": Out(nullable=True),
        "attributes": None,
        "priority": None,
        "matter_class": None,
        "suggested_unit": short_out("units", "Code of the unit the category routes to"),
        "lead_unit": short_out("units", "Code of the lead unit once dispatched"),
        "units": None,
        "escalated": "Owned by the district since it accepted an escalation",
        "acknowledge_deadline": None,
        "resolve_deadline": None,
        "expected_resolve_time": None,
        "acknowledge_overdue": None,
        "resolve_overdue": None,
        "acknowledge_time": None,
        "resolve_time": None,
        "close_time": None,
        "resolution": Out(description="The result note", nullable=True),
        "resolution_media_uris": None,
        "mediation_outcome": "Disputes only",
        "rating": Out(nullable=True),
        "merged_into": short_out("tickets", "Id of the ticket this one was merged into"),
        "reject_reason": Out(nullable=True),
        "possible_duplicates": Out(
            convert=lambda t: t.removeprefix("tickets/"),
            description="Ids of likely duplicates, for the dispatcher",
        ),
        "create_time": None,
        "update_time": None,
    },
): ...


class TicketPage(View, item=Ticket, source="tickets"): ...


class NewTicket(Body):
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


class Transition(Body):
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


class NewRating(Body):
    score: Annotated[int, Field(ge=1, le=5)] = Field(examples=[5])
    comment: Comment = Field("", examples=["处理很及时"])


def _seq(name: str) -> int | None:
    seq = name.rsplit("/", 1)[-1]
    return int(seq) if seq.isdigit() else None


class TimelineEntry(
    View,
    message=pb.TimelineEntry,
    fields={
        "seq": Out("name", "Position in the ticket's timeline", convert=_seq, annotation=int | None),
        "name": "`tickets/{id}/timeline/{seq}`",
        "action": None,
        "actor": "`users/{id}`, `serviceAccounts/{id}`, or `system`",
        "time": None,
        "from_state": None,
        "to_state": None,
        "note": None,
        "unit": short_out("units", "Code of the unit acting (acknowledge, return, start, resolve)"),
        "details": "What the action set: the units of a dispatch, the rating ...",
    },
): ...


class TimelinePage(View, item=TimelineEntry, source="entries"): ...


# ----------------------------------------------------------------------------- statistics


def _by_state(s: pb.TicketStatistics) -> dict[TicketStateName, int]:
    by_state = dict.fromkeys(TicketStateName, 0)
    for count in s.by_state:
        state = TicketStateName.from_pb(count.state)
        if state is not None:
            by_state[state] = count.count
    return by_state


class TicketStatistics(
    View,
    message=pb.TicketStatistics,
    fields={
        "node": Out(
            compute=lambda s: "", annotation=str, description="Path of the node: tickets at or below it"
        ),
        "total": None,
        "by_state": Out(
            compute=_by_state,
            annotation=dict[TicketStateName, int],
            description="Every state, with 0 for none",
        ),
        "completed": "Resolved or closed",
        "completion_rate": "completed / (total - rejected - merged); 0 when none",
        "completed_on_time": None,
        "on_time_rate": "completed by the resolve deadline / completed",
        "completed_same_day": None,
        "same_day_rate": "completed the day reported (China Standard Time) / completed",
        "rated": None,
        "satisfied": "Rated 4 or 5",
        "satisfaction_rate": "satisfied / rated",
        "disputes_mediated": None,
        "disputes_settled": None,
        "mediation_success_rate": "disputes settled / disputes resolved with an outcome",
        "median_time_to_acknowledge_seconds": "Report to the lead unit's acknowledgement, wall-clock; "
        "within 2.5%",
        "p90_time_to_acknowledge_seconds": None,
        "median_time_to_resolve_seconds": "Report to resolution, wall-clock",
        "p90_time_to_resolve_seconds": None,
        "overdue": "Tickets that breached a deadline",
    },
): ...


# ----------------------------------------------------------------------------- working calendar


class CalendarDay(
    View,
    message=pb.CalendarDay,
    fields={
        "date": "YYYY-MM-DD",
        "kind": "`holiday` off, or `workday`: a weekend day worked (调休上班)",
        "name": Out("display_name"),
    },
): ...


class NewCalendarDay(Body):
    date: dt.date = Field(description="A day of the year in the URL", examples=["2025-01-28"])
    kind: DayKindName = Field(description="`holiday` off, or `workday`: a weekend day worked (调休上班)")
    name: Annotated[str, StringConstraints(max_length=40), Proto("display_name")] = Field(
        "", examples=["春节"]
    )


class CalendarYear(
    View,
    message=pb.CalendarYear,
    fields={
        "name": "`calendarYears/{year}`",
        "year": None,
        "days": "Public holidays and make-up workdays; other weekdays work, weekends are off",
        "update_time": None,
    },
): ...


class CalendarYearBody(Body):
    """Replaces every holiday and make-up workday of the year."""

    days: Annotated[list[NewCalendarDay], Field(max_length=366)]
