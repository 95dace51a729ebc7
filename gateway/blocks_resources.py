"""JSON shapes of the blocks REST resources, declared over the protobuf messages (gateway.rest).

Node paths travel in URLs as one segment with dots (`yuhu.wanlou.taoyuan.b07`, the node's `ref`) and
in JSON as the path with slashes (`yuhu/wanlou/taoyuan/b07`); JSON bodies accept either separator
(codes never contain '.'). Enums are lower-case strings, times RFC 3339, boundaries GeoJSON objects.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from google.protobuf import timestamp_pb2
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from gateway.rest import Body, Named, Out, Proto, ProtoEnum, View, from_pb, patch_of, proto_enums, to_pb
from gateway.rest.bodies import timestamp as _timestamp
from gateway.rest.names import id_out, node_path, path_of, ref_of, user_name
from gov.blocks.v1 import blocks_pb2 as pb

__all__ = ["from_pb", "path_of", "ref_of", "to_pb"]

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


def timestamp(value: dt.datetime | None, field: str) -> timestamp_pb2.Timestamp | None:
    """A datetime (naive means UTC) -> Timestamp; None stays None (the service's default applies)."""
    return _timestamp(value, field) if value is not None else None


# ----------------------------------------------------------------------------- enums


class NodeKindName(ProtoEnum, proto=pb.NodeKind): ...


class NodeStateName(ProtoEnum, proto=pb.NodeState): ...


class StaffRoleName(ProtoEnum, proto=pb.StaffRole): ...


class AssistantKindName(ProtoEnum, proto=pb.AssistantKind): ...


class TagName(ProtoEnum, proto=pb.VulnerabilityTag): ...


class RelationName(ProtoEnum, proto=pb.Relation): ...


class ImportKindName(ProtoEnum, proto=pb.ImportKind): ...


PROTO_ENUMS = proto_enums(
    NodeKindName, NodeStateName, StaffRoleName, AssistantKindName, TagName, RelationName, ImportKindName
)


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
UserName = Annotated[str, StringConstraints(max_length=70, pattern=USER_PATTERN), AfterValidator(user_name)]
"""A person in another service's body: `42` or `users/42`, sent as `users/42`."""
HouseholdId = Annotated[
    str,
    StringConstraints(max_length=75, pattern=r"^(households/)?[A-Za-z0-9_-]{1,64}$"),
    AfterValidator(lambda v: v.removeprefix("households/")),
    Named("households"),
]
"""A household in another service's body: `households/{id}` or the id, sent as the id."""
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


def _geometry(source: str, description: str | None = None) -> Out:
    """A GeoJSON text field read as the geometry object it holds; null when empty."""
    return Out(source, description, convert=geojson, annotation=dict[str, Any] | None)


# ----------------------------------------------------------------------------- region tree


class Node(
    View,
    message=pb.Node,
    fields={
        "ref": Out("path", "The path with dots, for URLs: `/api/v1/nodes/{ref}`", convert=ref_of),
        "name": "Resource name, `nodes/{path}`",
        "path": "Codes from the district down, e.g. `yuhu/wanlou/taoyuan/b07`",
        "code": None,
        "parent": Out(description="Path of the parent; null for a district", nullable=True),
        "kind": None,
        "display_name": None,
        "boundary": _geometry("boundary_geojson", "GeoJSON geometry; null when unknown"),
        "state": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class NodePage(View, item=Node, source="nodes"): ...


class NewNode(Body):
    code: Code = Field(examples=["b07"])
    parent: NodePath | None = Field(
        None,
        description="Path of the parent (slashes or dots); omit for a district",
        examples=["yuhu/wanlou"],
    )
    kind: NodeKindName
    display_name: DisplayName = Field(examples=["桃园区块"])
    boundary: Annotated[Boundary | None, Proto("boundary_geojson", boundary_text)] = None


NodePatch = patch_of(
    NewNode,
    "NodePatch",
    fixed=("code", "kind"),
    clearable=("boundary",),
    doc="Only the fields present are changed; `boundary: null` clears the boundary, `parent` moves the node.",
)


class CoverageOverlap(
    View,
    message=pb.CoverageOverlap,
    fields={"block_a": None, "block_b": None, "area_m2": None, "geometry": _geometry("geometry_geojson")},
): ...


class CoverageGap(
    View, message=pb.CoverageGap, fields={"area_m2": None, "geometry": _geometry("geometry_geojson")}
): ...


class CoverageReport(
    View,
    message=pb.CoverageReport,
    fields={
        "node": Out(convert=node_path, description="Path of the audited node"),
        "blocks": None,
        "blocks_without_boundary": "Paths of blocks that cannot be audited",
        "parent_area_m2": None,
        "covered_area_m2": None,
        "overlaps": None,
        "gaps": None,
        "complete": None,
    },
): ...


# ----------------------------------------------------------------------------- staffing


class StaffAssignment(
    View,
    message=pb.StaffAssignment,
    fields={
        "id": id_out(),
        "name": "`nodes/{block path}/staff/{id}`",
        "block": "Block path",
        "user": "`users/{id}`",
        "role": None,
        "assistant_kind": None,
        "household_ids": "Neighbour heads: the households they keep contact with",
        "create_time": None,
    },
): ...


class StaffPage(View, item=StaffAssignment, source="assignments"): ...


class NewStaffAssignment(Body):
    user: UserRef = Field(description="`users/{id}` or the bare id", examples=["users/0f6c..."])
    role: StaffRoleName
    assistant_kind: AssistantKindName | None = Field(None, description="Required for assistants only")
    household_ids: Annotated[list[HouseholdRef], Field(max_length=1000)] = Field(
        default_factory=list, description="Neighbour heads only"
    )
    replace: bool = Field(False, description="Governor or supervisor: replace the current holder in one step")


class StaffingViolation(View, message=pb.StaffingViolation, fields={"block": None, "rule": None}): ...


class StaffingAudit(
    View, message=pb.StaffingAudit, fields={"blocks": None, "complete_blocks": None, "violations": None}
): ...


class NodeStatistics(
    View,
    message=pb.NodeStatistics,
    fields={
        "node": Out(convert=node_path, description="Path of the node"),
        "blocks": None,
        "households": None,
        "residents": None,
        "staff": None,
        "vulnerable_households": None,
        "visits": "Visits in the period (default the last 30 days)",
        "fully_staffed_blocks": "Blocks meeting 1+N+1",
    },
): ...


# ----------------------------------------------------------------------------- buildings and households


class Building(
    View,
    message=pb.Building,
    fields={
        "name": "`nodes/{block path}/buildings/{code}`",
        "block": None,
        "code": None,
        "display_name": None,
        "address": None,
    },
): ...


class BuildingPage(View, item=Building, source="buildings"): ...


class NewBuilding(Body):
    code: Code = Field(examples=["3"])
    display_name: DisplayName = Field(examples=["3栋"])
    address: Address = ""


class Resident(
    View,
    message=pb.Resident,
    fields={
        "id": None,
        "display_name": None,
        "relation": None,
        "phone": Out(nullable=True),
        "birth_year": Out(nullable=True),
        "id_suffix": Out(description="Last 4 characters of the national id, never more", nullable=True),
        "user": Out(
            description="Linked identity account, `users/{id}`: that user sees the household", nullable=True
        ),
    },
): ...


class NewResident(Body):
    display_name: DisplayName = Field(examples=["刘奶奶"])
    relation: RelationName
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    id_suffix: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        None, description="Only the last 4 characters of a national id"
    )
    user: UserRef | None = Field(None, description="`users/{id}` of the resident's own account")


Tags = Annotated[list[TagName], Field(max_length=len(TagName))]
Residents = Annotated[list[NewResident], Field(max_length=100)]


class Household(
    View,
    message=pb.Household,
    fields={
        "id": None,
        "name": "`households/{id}`",
        "code": "Stable external code from the community's register",
        "block": "Block path",
        "building": Out(description="Building code in that block", nullable=True),
        "address": None,
        "tags": None,
        "residents": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class HouseholdPage(View, item=Household, source="households"): ...


class NewHousehold(Body):
    code: HouseholdCode = Field(examples=["YW-0301-401"])
    block: NodePath = Field(description="Block path (slashes or dots)", examples=["yuhu/wanlou/yaowan/b07"])
    building: Code | None = Field(None, description="Code of a building in that block")
    address: Address = Field(examples=["万楼街道窑湾社区3栋401"])
    tags: Tags = Field(default_factory=list)
    residents: Residents = Field(default_factory=list)


HouseholdPatch = patch_of(
    NewHousehold,
    "HouseholdPatch",
    fixed=("code", "block"),
    clearable=("building",),
    doc="Only the fields present are changed: `residents` replaces the list, `building: null` clears it.",
)


class HouseholdMove(Body):
    block: NodePath = Field(description="Path of the block to move to (slashes or dots)")
    building: Code | None = Field(None, description="Code of a building in that block")


# ----------------------------------------------------------------------------- visits


class Visit(
    View,
    message=pb.Visit,
    fields={
        "id": id_out(),
        "name": "`households/{id}/visits/{id}`",
        "household": "`households/{id}`",
        "visitor": "Who recorded it, `users/{id}`",
        "visit_time": None,
        "notes": None,
        "issues_found": None,
        "issues_resolved": "Problems the visit resolved; one can earn the household points",
        "create_time": None,
    },
): ...


class VisitPage(View, item=Visit, source="visits"): ...


class NewVisit(Body):
    visit_time: dt.datetime | None = Field(None, description="Default now; naive times are UTC")
    notes: Annotated[str, StringConstraints(max_length=4000)] = ""
    issues_found: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=50)] = (
        Field(default_factory=list, description="Problems found on the visit, short phrases")
    )
    issues_resolved: Annotated[
        list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=50)
    ] = Field(default_factory=list, description="Problems the visit resolved, short phrases")


# ----------------------------------------------------------------------------- imports


class ImportRowError(
    View,
    message=pb.ImportRowError,
    fields={
        "line": "Line of the file (1 is the header); the feature number for GeoJSON",
        "field": None,
        "message": None,
    },
): ...


class ImportResult(
    View,
    message=pb.ImportFileResponse,
    fields={
        "rows": None,
        "created": None,
        "updated": None,
        "unchanged": None,
        "errors": "Only with validate_only; a failed import is a 400 problem listing its errors instead",
    },
): ...
