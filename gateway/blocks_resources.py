"""JSON shapes of the blocks REST resources and their conversion to and from protobuf messages.

Node paths travel in URLs as one segment with dots (`yuhu.wanlou.taoyuan.b07`, the node's `ref`) and
in JSON as the path with slashes (`yuhu/wanlou/taoyuan/b07`); JSON bodies accept either separator
(codes never contain '.'). Enums are lower-case strings, times RFC 3339, boundaries GeoJSON objects.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from google.protobuf import timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from gateway.enums import ProtoEnums
from gateway.problems import Problem
from gateway.resources import time
from gov.blocks.v1 import blocks_pb2 as pb

_CODE = r"[a-z0-9][a-z0-9_-]{0,31}"
MAX_DEPTH = 8
NODE_REF_PATTERN = rf"^{_CODE}(\.{_CODE}){{0,{MAX_DEPTH - 1}}}$"
"""A node path in a URL segment: codes joined by dots."""
NODE_REF_MAX_LENGTH = MAX_DEPTH * 32 + MAX_DEPTH - 1
CODE_PATTERN = rf"^{_CODE}$"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USER_PATTERN = r"^(users/)?[A-Za-z0-9_-]{1,64}$"
# The blocks service refuses boundaries with more positions than this; the gateway says so first.
MAX_BOUNDARY_POSITIONS = 20_000


def path_of(ref: str) -> str:
    """`yuhu.wanlou` (or `yuhu/wanlou`) -> `yuhu/wanlou`."""
    return ref.replace(".", "/")


def ref_of(path: str) -> str:
    """`yuhu/wanlou` -> `yuhu.wanlou`, the form that fits one URL segment."""
    return path.removeprefix("nodes/").replace("/", ".")


def timestamp(value: dt.datetime | None, field: str) -> timestamp_pb2.Timestamp | None:
    """A datetime (naive means UTC) -> Timestamp; None stays None (the service's default applies)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    out = timestamp_pb2.Timestamp()
    try:
        out.FromDatetime(value)
    except (ValueError, OverflowError):
        raise Problem(400, f"{field}: out of range", slug="invalid-argument") from None
    return out


# ----------------------------------------------------------------------------- enums


class NodeKindName(StrEnum):
    district = "district"
    street = "street"
    community = "community"
    block = "block"


class NodeStateName(StrEnum):
    active = "active"
    retired = "retired"


class StaffRoleName(StrEnum):
    governor = "governor"
    assistant = "assistant"
    supervisor = "supervisor"
    area_head = "area_head"
    group_leader = "group_leader"
    neighbour_head = "neighbour_head"


class AssistantKindName(StrEnum):
    liaison_cadre = "liaison_cadre"
    party_group_leader = "party_group_leader"
    owners_committee_member = "owners_committee_member"
    resident_representative = "resident_representative"


class TagName(StrEnum):
    elderly_alone = "elderly_alone"
    subsistence_allowance = "subsistence_allowance"
    extreme_hardship = "extreme_hardship"
    left_behind_child = "left_behind_child"
    distressed_child = "distressed_child"
    disability = "disability"


class RelationName(StrEnum):
    head = "head"
    spouse = "spouse"
    child = "child"
    parent = "parent"
    grandchild = "grandchild"
    grandparent = "grandparent"
    sibling = "sibling"
    other = "other"


class ImportKindName(StrEnum):
    nodes = "nodes"
    boundaries = "boundaries"
    buildings = "buildings"
    households = "households"
    residents = "residents"


# JSON enum -> (protobuf enum, value-name prefix).
PROTO_ENUMS: dict[type[StrEnum], tuple[EnumTypeWrapper, str]] = {
    NodeKindName: (pb.NodeKind, "NODE_KIND"),
    NodeStateName: (pb.NodeState, "NODE_STATE"),
    StaffRoleName: (pb.StaffRole, "STAFF_ROLE"),
    AssistantKindName: (pb.AssistantKind, "ASSISTANT_KIND"),
    TagName: (pb.VulnerabilityTag, "VULNERABILITY_TAG"),
    RelationName: (pb.Relation, "RELATION"),
    ImportKindName: (pb.ImportKind, "IMPORT_KIND"),
}

_ENUMS = ProtoEnums(PROTO_ENUMS)
to_pb = _ENUMS.to_pb
from_pb = _ENUMS.from_pb


# ----------------------------------------------------------------------------- field types

Code = Annotated[str, StringConstraints(max_length=32, pattern=CODE_PATTERN)]
NodePath = Annotated[
    str,
    StringConstraints(
        max_length=NODE_REF_MAX_LENGTH, pattern=rf"^{_CODE}([./]{_CODE}){{0,{MAX_DEPTH - 1}}}$"
    ),
    AfterValidator(path_of),
]
UserRef = Annotated[str, StringConstraints(max_length=70, pattern=USER_PATTERN)]
HouseholdRef = Annotated[str, StringConstraints(max_length=64, pattern=ID_PATTERN)]
DisplayName = Annotated[str, StringConstraints(max_length=64)]
Address = Annotated[str, StringConstraints(max_length=200)]
HouseholdCode = Annotated[str, StringConstraints(max_length=40, pattern=r"^[A-Za-z0-9_-]{1,40}$")]

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=3)]
Ring = Annotated[list[Position], Field(min_length=4, max_length=MAX_BOUNDARY_POSITIONS)]
PolygonCoordinates = Annotated[list[Ring], Field(min_length=1, max_length=1000)]


def _check_positions(rings: list[list[list[float]]]) -> None:
    if sum(len(r) for r in rings) > MAX_BOUNDARY_POSITIONS:
        raise ValueError(f"at most {MAX_BOUNDARY_POSITIONS} positions in a boundary")


class PolygonGeometry(BaseModel):
    type: Literal["Polygon"]
    coordinates: PolygonCoordinates

    @model_validator(mode="after")
    def _size(self) -> PolygonGeometry:
        _check_positions(self.coordinates)
        return self


class MultiPolygonGeometry(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[PolygonCoordinates], Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _size(self) -> MultiPolygonGeometry:
        _check_positions([ring for polygon in self.coordinates for ring in polygon])
        return self


Boundary = Annotated[
    PolygonGeometry | MultiPolygonGeometry,
    Field(
        discriminator="type",
        description="GeoJSON Polygon or MultiPolygon geometry in WGS84 ([lng, lat] positions)",
    ),
]


def boundary_text(boundary: PolygonGeometry | MultiPolygonGeometry | None) -> str:
    return json.dumps(boundary.model_dump(), separators=(",", ":")) if boundary is not None else ""


def geojson(text: str) -> dict[str, Any] | None:
    return json.loads(text) if text else None


# ----------------------------------------------------------------------------- region tree


class Node(BaseModel):
    ref: str = Field(description="The path with dots, for URLs: `/api/v1/nodes/{ref}`")
    name: str = Field(description="Resource name, `nodes/{path}`")
    path: str = Field(description="Codes from the district down, e.g. `yuhu/wanlou/taoyuan/b07`")
    code: str
    parent: str | None = Field(description="Path of the parent; null for a district")
    kind: NodeKindName | None
    display_name: str
    boundary: dict[str, Any] | None = Field(description="GeoJSON geometry; null when unknown")
    state: NodeStateName | None
    create_time: dt.datetime | None
    update_time: dt.datetime | None

    @classmethod
    def of(cls, n: pb.Node) -> Node:
        return cls(
            ref=ref_of(n.path),
            name=n.name,
            path=n.path,
            code=n.code,
            parent=n.parent or None,
            kind=from_pb(NodeKindName, n.kind),
            display_name=n.display_name,
            boundary=geojson(n.boundary_geojson),
            state=from_pb(NodeStateName, n.state),
            create_time=time(n.create_time),
            update_time=time(n.update_time),
        )


class NodePage(BaseModel):
    items: list[Node]
    next_page_token: str = ""


class NewNode(BaseModel):
    code: Code = Field(examples=["b07"])
    parent: NodePath | None = Field(
        None,
        description="Path of the parent (slashes or dots); omit for a district",
        examples=["yuhu/wanlou"],
    )
    kind: NodeKindName
    display_name: DisplayName = Field(examples=["桃园区块"])
    boundary: Boundary | None = None

    def to_pb(self) -> pb.Node:
        return pb.Node(
            code=self.code,
            parent=self.parent or "",
            kind=to_pb(self.kind),
            display_name=self.display_name,
            boundary_geojson=boundary_text(self.boundary),
        )


class NodePatch(BaseModel):
    """Only the fields present are changed; `boundary: null` clears the boundary, `parent` moves the node."""

    display_name: DisplayName | None = None
    boundary: Boundary | None = None
    parent: NodePath | None = None

    def to_pb(self, path: str) -> tuple[pb.Node, list[str]]:
        """The node and its update mask."""
        fields = self.model_fields_set
        if not fields:
            raise Problem(400, "name at least one field to change", slug="invalid-argument")
        for name in ("display_name", "parent"):
            if name in fields and getattr(self, name) is None:
                raise Problem(400, f"{name} cannot be null", slug="invalid-argument")
        node = pb.Node(
            name=f"nodes/{path}",
            display_name=self.display_name or "",
            boundary_geojson=boundary_text(self.boundary),
            parent=self.parent or "",
        )
        mask = sorted("boundary_geojson" if f == "boundary" else f for f in fields)
        return node, mask


class CoverageOverlap(BaseModel):
    block_a: str
    block_b: str
    area_m2: float
    geometry: dict[str, Any] | None


class CoverageGap(BaseModel):
    area_m2: float
    geometry: dict[str, Any] | None


class CoverageReport(BaseModel):
    node: str = Field(description="Path of the audited node")
    blocks: int
    blocks_without_boundary: list[str] = Field(description="Paths of blocks that cannot be audited")
    parent_area_m2: float
    covered_area_m2: float
    overlaps: list[CoverageOverlap]
    gaps: list[CoverageGap]
    complete: bool

    @classmethod
    def of(cls, r: pb.CoverageReport) -> CoverageReport:
        return cls(
            node=r.node.removeprefix("nodes/"),
            blocks=r.blocks,
            blocks_without_boundary=list(r.blocks_without_boundary),
            parent_area_m2=r.parent_area_m2,
            covered_area_m2=r.covered_area_m2,
            overlaps=[
                CoverageOverlap(
                    block_a=o.block_a,
                    block_b=o.block_b,
                    area_m2=o.area_m2,
                    geometry=geojson(o.geometry_geojson),
                )
                for o in r.overlaps
            ],
            gaps=[CoverageGap(area_m2=g.area_m2, geometry=geojson(g.geometry_geojson)) for g in r.gaps],
            complete=r.complete,
        )


# ----------------------------------------------------------------------------- staffing


class StaffAssignment(BaseModel):
    id: str
    name: str = Field(description="`nodes/{block path}/staff/{id}`")
    block: str = Field(description="Block path")
    user: str = Field(description="`users/{id}`")
    role: StaffRoleName | None
    assistant_kind: AssistantKindName | None
    household_ids: list[str] = Field(description="Neighbour heads: the households they keep contact with")
    create_time: dt.datetime | None

    @classmethod
    def of(cls, a: pb.StaffAssignment) -> StaffAssignment:
        return cls(
            id=a.name.rsplit("/", 1)[-1],
            name=a.name,
            block=a.block,
            user=a.user,
            role=from_pb(StaffRoleName, a.role),
            assistant_kind=from_pb(AssistantKindName, a.assistant_kind),
            household_ids=list(a.household_ids),
            create_time=time(a.create_time),
        )


class StaffPage(BaseModel):
    items: list[StaffAssignment]
    next_page_token: str = ""


class NewStaffAssignment(BaseModel):
    user: UserRef = Field(description="`users/{id}` or the bare id", examples=["users/0f6c..."])
    role: StaffRoleName
    assistant_kind: AssistantKindName | None = Field(None, description="Required for assistants only")
    household_ids: Annotated[list[HouseholdRef], Field(max_length=1000)] = Field(
        default_factory=list, description="Neighbour heads only"
    )
    replace: bool = Field(False, description="Governor or supervisor: replace the current holder in one step")

    def to_pb(self, block: str) -> pb.AssignStaffRequest:
        return pb.AssignStaffRequest(
            assignment=pb.StaffAssignment(
                block=block,
                user=self.user,
                role=to_pb(self.role),
                assistant_kind=to_pb(self.assistant_kind),
                household_ids=self.household_ids,
            ),
            replace=self.replace,
        )


class StaffingViolation(BaseModel):
    block: str
    rule: str


class StaffingAudit(BaseModel):
    blocks: int
    complete_blocks: int
    violations: list[StaffingViolation]

    @classmethod
    def of(cls, a: pb.StaffingAudit) -> StaffingAudit:
        return cls(
            blocks=a.blocks,
            complete_blocks=a.complete_blocks,
            violations=[StaffingViolation(block=v.block, rule=v.rule) for v in a.violations],
        )


class NodeStatistics(BaseModel):
    node: str = Field(description="Path of the node")
    blocks: int
    households: int
    residents: int
    staff: int
    vulnerable_households: int
    visits: int = Field(description="Visits in the period (default the last 30 days)")
    fully_staffed_blocks: int = Field(description="Blocks meeting 1+N+1")

    @classmethod
    def of(cls, s: pb.NodeStatistics) -> NodeStatistics:
        return cls(
            node=s.node.removeprefix("nodes/"),
            blocks=s.blocks,
            households=s.households,
            residents=s.residents,
            staff=s.staff,
            vulnerable_households=s.vulnerable_households,
            visits=s.visits,
            fully_staffed_blocks=s.fully_staffed_blocks,
        )


# ----------------------------------------------------------------------------- buildings and households


class Building(BaseModel):
    name: str = Field(description="`nodes/{block path}/buildings/{code}`")
    block: str
    code: str
    display_name: str
    address: str

    @classmethod
    def of(cls, b: pb.Building) -> Building:
        return cls(name=b.name, block=b.block, code=b.code, display_name=b.display_name, address=b.address)


class BuildingPage(BaseModel):
    items: list[Building]
    next_page_token: str = ""


class NewBuilding(BaseModel):
    code: Code = Field(examples=["3"])
    display_name: DisplayName = Field(examples=["3栋"])
    address: Address = ""

    def to_pb(self, block: str) -> pb.Building:
        return pb.Building(block=block, code=self.code, display_name=self.display_name, address=self.address)


class Resident(BaseModel):
    id: str
    display_name: str
    relation: RelationName | None
    phone: str | None
    birth_year: int | None
    id_suffix: str | None = Field(description="Last 4 characters of the national id, never more")
    user: str | None = Field(
        description="Linked identity account, `users/{id}`: that user sees the household"
    )

    @classmethod
    def of(cls, r: pb.Resident) -> Resident:
        return cls(
            id=r.id,
            display_name=r.display_name,
            relation=from_pb(RelationName, r.relation),
            phone=r.phone or None,
            birth_year=r.birth_year or None,
            id_suffix=r.id_suffix or None,
            user=r.user or None,
        )


class NewResident(BaseModel):
    display_name: DisplayName = Field(examples=["刘奶奶"])
    relation: RelationName
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    id_suffix: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        None, description="Only the last 4 characters of a national id"
    )
    user: UserRef | None = Field(None, description="`users/{id}` of the resident's own account")

    def to_pb(self) -> pb.Resident:
        return pb.Resident(
            display_name=self.display_name,
            relation=to_pb(self.relation),
            phone=self.phone or "",
            birth_year=self.birth_year or 0,
            id_suffix=self.id_suffix or "",
            user=self.user or "",
        )


Tags = Annotated[list[TagName], Field(max_length=len(TagName))]
Residents = Annotated[list[NewResident], Field(max_length=100)]


class Household(BaseModel):
    id: str
    name: str = Field(description="`households/{id}`")
    code: str = Field(description="Stable external code from the community's register")
    block: str = Field(description="Block path")
    building: str | None = Field(description="Building code in that block")
    address: str
    tags: list[TagName]
    residents: list[Resident]
    create_time: dt.datetime | None
    update_time: dt.datetime | None

    @classmethod
    def of(cls, h: pb.Household) -> Household:
        return cls(
            id=h.id,
            name=h.name,
            code=h.code,
            block=h.block,
            building=h.building or None,
            address=h.address,
            tags=[t for t in (from_pb(TagName, v) for v in h.tags) if t is not None],
            residents=[Resident.of(r) for r in h.residents],
            create_time=time(h.create_time),
            update_time=time(h.update_time),
        )


class HouseholdPage(BaseModel):
    items: list[Household]
    next_page_token: str = ""


class NewHousehold(BaseModel):
    code: HouseholdCode = Field(examples=["YW-0301-401"])
    block: NodePath = Field(description="Block path (slashes or dots)", examples=["yuhu/wanlou/yaowan/b07"])
    building: Code | None = Field(None, description="Code of a building in that block")
    address: Address = Field(examples=["万楼街道窑湾社区3栋401"])
    tags: Tags = Field(default_factory=list)
    residents: Residents = Field(default_factory=list)

    def to_pb(self) -> pb.Household:
        return pb.Household(
            code=self.code,
            block=self.block,
            building=self.building or "",
            address=self.address,
            tags=[to_pb(t) for t in self.tags],
            residents=[r.to_pb() for r in self.residents],
        )


class HouseholdPatch(BaseModel):
    """Only the fields present are changed: `residents` replaces the list, `building: null` clears it."""

    address: Address | None = None
    tags: Tags | None = None
    residents: Residents | None = None
    building: Code | None = None

    def to_pb(self, household_id: str) -> tuple[pb.Household, list[str]]:
        """The household and its update mask."""
        fields = self.model_fields_set
        if not fields:
            raise Problem(400, "name at least one field to change", slug="invalid-argument")
        for name in ("address", "tags", "residents"):
            if name in fields and getattr(self, name) is None:
                raise Problem(400, f"{name} cannot be null", slug="invalid-argument")
        household = pb.Household(
            name=f"households/{household_id}",
            address=self.address or "",
            tags=[to_pb(t) for t in self.tags or ()],
            residents=[r.to_pb() for r in self.residents or ()],
            building=self.building or "",
        )
        return household, sorted(fields)


class HouseholdMove(BaseModel):
    block: NodePath = Field(description="Path of the block to move to (slashes or dots)")
    building: Code | None = Field(None, description="Code of a building in that block")


# ----------------------------------------------------------------------------- visits


class Visit(BaseModel):
    id: str
    name: str = Field(description="`households/{id}/visits/{id}`")
    household: str = Field(description="`households/{id}`")
    visitor: str = Field(description="Who recorded it, `users/{id}`")
    visit_time: dt.datetime | None
    notes: str
    issues_found: list[str]
    create_time: dt.datetime | None

    @classmethod
    def of(cls, v: pb.Visit) -> Visit:
        return cls(
            id=v.name.rsplit("/", 1)[-1],
            name=v.name,
            household=v.household,
            visitor=v.visitor,
            visit_time=time(v.visit_time),
            notes=v.notes,
            issues_found=list(v.issues_found),
            create_time=time(v.create_time),
        )


class VisitPage(BaseModel):
    items: list[Visit]
    next_page_token: str = ""


class NewVisit(BaseModel):
    visit_time: dt.datetime | None = Field(None, description="Default now; naive times are UTC")
    notes: Annotated[str, StringConstraints(max_length=4000)] = ""
    issues_found: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=50)] = (
        Field(default_factory=list, description="Problems found on the visit, short phrases")
    )

    def to_pb(self, household_id: str) -> pb.Visit:
        return pb.Visit(
            household=f"households/{household_id}",
            visit_time=timestamp(self.visit_time, "visit_time"),
            notes=self.notes,
            issues_found=self.issues_found,
        )


# ----------------------------------------------------------------------------- imports


class ImportRowError(BaseModel):
    line: int = Field(description="Line of the file (1 is the header); the feature number for GeoJSON")
    field: str
    message: str


class ImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[ImportRowError] = Field(
        description="Only with validate_only; a failed import is a 400 problem listing its errors instead"
    )

    @classmethod
    def of(cls, r: pb.ImportFileResponse) -> ImportResult:
        return cls(
            rows=r.rows,
            created=r.created,
            updated=r.updated,
            unchanged=r.unchanged,
            errors=[ImportRowError(line=e.line, field=e.field, message=e.message) for e in r.errors],
        )
