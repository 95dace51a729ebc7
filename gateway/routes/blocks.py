"""Blocks: the region tree, 1+N+1 staffing, location and coverage, buildings, households, visits, imports.

A node path goes into one URL segment with dots: `yuhu/wanlou/taoyuan/b07` is
`/api/v1/nodes/yuhu.wanlou.taoyuan.b07`. Each handler is one upstream call to the BlocksService;
JSON shapes and their protobuf conversion live in gateway.blocks_resources.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import grpc
from fastapi import APIRouter, Path, Query, Request, Response

from gateway.blocks_resources import (
    ID_PATTERN,
    NODE_REF_MAX_LENGTH,
    NODE_REF_PATTERN,
    USER_PATTERN,
    Building,
    BuildingPage,
    CoverageReport,
    Household,
    HouseholdMove,
    HouseholdPage,
    HouseholdPatch,
    ImportKindName,
    ImportResult,
    NewBuilding,
    NewHousehold,
    NewNode,
    NewStaffAssignment,
    NewVisit,
    Node,
    NodePage,
    NodePatch,
    NodeStatistics,
    StaffAssignment,
    StaffingAudit,
    StaffPage,
    TagName,
    Visit,
    VisitPage,
    path_of,
    ref_of,
    timestamp,
    to_pb,
)
from gateway.params import IdempotencyKey, PageSize, PageToken, body_limit, free_text
from gateway.problems import Problem
from gateway.upstream import CallerDep, call, upstreams
from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub

# A 200,000-household file takes minutes, not the seconds other calls get.
IMPORT_TIMEOUT_SECONDS = 900.0

router = APIRouter(prefix="/api/v1", tags=["blocks"])

NodeRef = Annotated[
    str,
    Path(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=NODE_REF_PATTERN,
        description="The node's path with dots instead of slashes (its `ref`)",
        examples=["yuhu.wanlou.taoyuan.b07"],
    ),
]
HouseholdId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN)]
AssignmentId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN)]
StartTime = Annotated[dt.datetime | None, Query(description="RFC 3339; naive times are UTC")]
EndTime = Annotated[dt.datetime | None, Query(description="RFC 3339, exclusive")]

MAX_IMPORT_BYTES = 200 * 1024 * 1024
# A boundary of MAX_BOUNDARY_POSITIONS pretty-printed is about 2 MiB, above the default body limit.
BOUNDARY_BODY_BYTES = 4 * 1024 * 1024
_IMPORT_MEDIA_TYPES = {
    ImportKindName.nodes: ("text/csv",),
    ImportKindName.boundaries: ("application/geo+json", "application/json"),
    ImportKindName.buildings: ("text/csv",),
    ImportKindName.households: ("text/csv",),
    ImportKindName.residents: ("text/csv",),
}


def _blocks(request: Request) -> BlocksServiceStub:
    return upstreams(request).blocks


# ----------------------------------------------------------------------------- region tree


@router.get("/nodes", response_model=NodePage, summary="List the children of a node, or the districts")
async def list_nodes(
    request: Request,
    caller: CallerDep,
    parent: Annotated[
        str,
        Query(
            max_length=NODE_REF_MAX_LENGTH,
            pattern=rf"^$|{NODE_REF_PATTERN}",
            description="Parent node's ref (dots); empty lists the districts",
        ),
    ] = "",
    include_retired: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> NodePage:
    reply = await call(
        request,
        _blocks(request).ListNodes,
        pb.ListNodesRequest(
            parent=path_of(parent),
            include_retired=include_retired,
            page_size=page_size,
            page_token=page_token,
        ),
        caller,
    )
    return NodePage.of(reply)


@router.post("/nodes", response_model=Node, status_code=201, summary="Create a node of the region tree")
@body_limit(BOUNDARY_BODY_BYTES)
async def create_node(request: Request, response: Response, body: NewNode, caller: CallerDep) -> Node:
    reply = await call(
        request, _blocks(request).CreateNode, pb.CreateNodeRequest(node=body.to_pb(pb.Node)), caller
    )
    response.headers["Location"] = f"/api/v1/nodes/{ref_of(reply.path)}"
    return Node.of(reply)


@router.get("/nodes/{node}", response_model=Node, summary="Get a node")
async def get_node(request: Request, node: NodeRef, caller: CallerDep) -> Node:
    reply = await call(request, _blocks(request).GetNode, pb.GetNodeRequest(name=path_of(node)), caller)
    return Node.of(reply)


@router.patch(
    "/nodes/{node}",
    response_model=Node,
    summary="Rename, re-boundary or move a node (fields present are changed)",
    description="A move (`parent`) changes the path of the node and everything below it; codes never change.",
)
@body_limit(BOUNDARY_BODY_BYTES)
async def update_node(request: Request, node: NodeRef, body: NodePatch, caller: CallerDep) -> Node:
    message, mask = body.patch(pb.Node, name=f"nodes/{path_of(node)}")
    reply = await call(
        request,
        _blocks(request).UpdateNode,
        pb.UpdateNodeRequest(node=message, update_mask=mask),
        caller,
    )
    return Node.of(reply)


@router.post(
    "/nodes/{node}/retire",
    response_model=Node,
    summary="Retire a node (409 while active children or households remain)",
)
async def retire_node(request: Request, node: NodeRef, caller: CallerDep) -> Node:
    reply = await call(request, _blocks(request).RetireNode, pb.RetireNodeRequest(name=path_of(node)), caller)
    return Node.of(reply)


@router.get(
    "/locate",
    response_model=Node,
    summary="The block containing a WGS84 point (404 outside every block)",
)
async def locate_block(
    request: Request,
    caller: CallerDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lng: Annotated[float, Query(ge=-180, le=180)],
) -> Node:
    reply = await call(request, _blocks(request).LocateBlock, pb.LocateBlockRequest(lat=lat, lng=lng), caller)
    return Node.of(reply.block)


@router.get(
    "/nodes/{node}/coverage",
    response_model=CoverageReport,
    summary="Overlaps between the node's blocks and gaps in its area no block covers",
)
async def audit_coverage(request: Request, node: NodeRef, caller: CallerDep) -> CoverageReport:
    reply = await call(
        request, _blocks(request).AuditCoverage, pb.AuditCoverageRequest(name=path_of(node)), caller
    )
    return CoverageReport.of(reply)


# ----------------------------------------------------------------------------- staffing


@router.get(
    "/nodes/{node}/staff",
    response_model=StaffPage,
    summary="Staff of the block, or of every block below the node",
)
async def list_staff(
    request: Request,
    node: NodeRef,
    caller: CallerDep,
    user: Annotated[
        str, Query(max_length=70, pattern=rf"^$|{USER_PATTERN}", description="Only this person")
    ] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> StaffPage:
    reply = await call(
        request,
        _blocks(request).ListStaff,
        pb.ListStaffRequest(node=path_of(node), user=user, page_size=page_size, page_token=page_token),
        caller,
    )
    return StaffPage.of(reply)


@router.post(
    "/nodes/{node}/staff",
    response_model=StaffAssignment,
    status_code=201,
    summary="Assign a person to a block role",
    description=(
        "Enforces 1+N+1: one governor, one supervisor, any number of assistants; the supervisor is neither "
        "the governor nor an assistant. A violation is a 409 problem naming the rule."
    ),
)
async def assign_staff(
    request: Request, response: Response, node: NodeRef, body: NewStaffAssignment, caller: CallerDep
) -> StaffAssignment:
    assignment_pb = body.to_pb(pb.StaffAssignment, skip={"replace"}, block=path_of(node))
    message = pb.AssignStaffRequest(assignment=assignment_pb, replace=body.replace)
    reply = await call(request, _blocks(request).AssignStaff, message, caller)
    assignment = StaffAssignment.of(reply)
    response.headers["Location"] = f"/api/v1/nodes/{ref_of(assignment.block)}/staff/{assignment.id}"
    return assignment


@router.delete("/nodes/{node}/staff/{assignment_id}", status_code=204, summary="Remove a person from a block")
async def remove_staff(
    request: Request, node: NodeRef, assignment_id: AssignmentId, caller: CallerDep
) -> Response:
    await call(
        request,
        _blocks(request).RemoveStaff,
        pb.RemoveStaffRequest(name=f"nodes/{path_of(node)}/staff/{assignment_id}"),
        caller,
    )
    return Response(status_code=204)


@router.get(
    "/nodes/{node}/staffing-audit",
    response_model=StaffingAudit,
    summary="Blocks under the node that do not meet 1+N+1, with the rule each one breaks",
)
async def audit_staffing(request: Request, node: NodeRef, caller: CallerDep) -> StaffingAudit:
    reply = await call(
        request, _blocks(request).AuditStaffing, pb.AuditStaffingRequest(node=path_of(node)), caller
    )
    return StaffingAudit.of(reply)


@router.get(
    "/nodes/{node}/statistics",
    response_model=NodeStatistics,
    summary="Counts for the node; visits in the period (default the last 30 days)",
)
async def node_statistics(
    request: Request,
    node: NodeRef,
    caller: CallerDep,
    start_time: StartTime = None,
    end_time: EndTime = None,
) -> NodeStatistics:
    reply = await call(
        request,
        _blocks(request).GetNodeStatistics,
        pb.GetNodeStatisticsRequest(
            name=path_of(node),
            start_time=timestamp(start_time, "start_time"),
            end_time=timestamp(end_time, "end_time"),
        ),
        caller,
    )
    return NodeStatistics.of(reply)


# ----------------------------------------------------------------------------- buildings


@router.get("/nodes/{node}/buildings", response_model=BuildingPage, summary="Buildings in or below a node")
async def list_buildings(
    request: Request,
    node: NodeRef,
    caller: CallerDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> BuildingPage:
    reply = await call(
        request,
        _blocks(request).ListBuildings,
        pb.ListBuildingsRequest(block=path_of(node), page_size=page_size, page_token=page_token),
        caller,
    )
    return BuildingPage.of(reply)


@router.post(
    "/nodes/{node}/buildings", response_model=Building, status_code=201, summary="Add a building to a block"
)
async def create_building(
    request: Request, response: Response, node: NodeRef, body: NewBuilding, caller: CallerDep
) -> Building:
    reply = await call(
        request,
        _blocks(request).CreateBuilding,
        pb.CreateBuildingRequest(building=body.to_pb(pb.Building, block=path_of(node))),
        caller,
    )
    response.headers["Location"] = f"/api/v1/nodes/{ref_of(reply.block)}/buildings/{reply.code}"
    return Building.of(reply)


# ----------------------------------------------------------------------------- households


@router.get(
    "/nodes/{node}/households",
    response_model=HouseholdPage,
    summary="Households of every block at or below the node that you may see",
)
async def list_households(
    request: Request,
    node: NodeRef,
    caller: CallerDep,
    tag: TagName | None = None,
    q: Annotated[str, free_text("q", max_length=64, description="Substring of address or code")] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> HouseholdPage:
    reply = await call(
        request,
        _blocks(request).ListHouseholds,
        pb.ListHouseholdsRequest(
            node=path_of(node), tag=to_pb(tag), query=q, page_size=page_size, page_token=page_token
        ),
        caller,
    )
    return HouseholdPage.of(reply)


@router.get(
    "/me/households", response_model=HouseholdPage, summary="Your own household file (as a linked resident)"
)
async def my_households(request: Request, caller: CallerDep) -> HouseholdPage:
    reply = await call(request, _blocks(request).ListHouseholds, pb.ListHouseholdsRequest(), caller)
    return HouseholdPage(items=[Household.of(h) for h in reply.households])


@router.post("/households", response_model=Household, status_code=201, summary="Create a household")
async def create_household(
    request: Request,
    response: Response,
    body: NewHousehold,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Household:
    reply = await call(
        request,
        _blocks(request).CreateHousehold,
        pb.CreateHouseholdRequest(household=body.to_pb(pb.Household), request_id=idempotency_key or ""),
        caller,
    )
    response.headers["Location"] = f"/api/v1/households/{reply.id}"
    return Household.of(reply)


@router.get(
    "/households/{household_id}",
    response_model=Household,
    summary="Get a household (staff of its block and above, or a resident linked to it)",
)
async def get_household(request: Request, household_id: HouseholdId, caller: CallerDep) -> Household:
    reply = await call(
        request,
        _blocks(request).GetHousehold,
        pb.GetHouseholdRequest(name=f"households/{household_id}"),
        caller,
    )
    return Household.of(reply)


@router.patch(
    "/households/{household_id}",
    response_model=Household,
    summary="Update a household (fields present are changed; residents replaces the list)",
)
async def update_household(
    request: Request, household_id: HouseholdId, body: HouseholdPatch, caller: CallerDep
) -> Household:
    message, mask = body.patch(pb.Household, name=f"households/{household_id}")
    reply = await call(
        request,
        _blocks(request).UpdateHousehold,
        pb.UpdateHouseholdRequest(household=message, update_mask=mask),
        caller,
    )
    return Household.of(reply)


@router.post(
    "/households/{household_id}/move",
    response_model=Household,
    summary="Move a household to another block (and optionally building)",
)
async def move_household(
    request: Request, household_id: HouseholdId, body: HouseholdMove, caller: CallerDep
) -> Household:
    reply = await call(
        request,
        _blocks(request).MoveHousehold,
        pb.MoveHouseholdRequest(
            name=f"households/{household_id}", block=body.block, building=body.building or ""
        ),
        caller,
    )
    return Household.of(reply)


# ----------------------------------------------------------------------------- visits


@router.get("/households/{household_id}/visits", response_model=VisitPage, summary="Visits to a household")
async def list_household_visits(
    request: Request,
    household_id: HouseholdId,
    caller: CallerDep,
    start_time: StartTime = None,
    end_time: EndTime = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> VisitPage:
    reply = await call(
        request,
        _blocks(request).ListVisits,
        pb.ListVisitsRequest(
            household=f"households/{household_id}",
            start_time=timestamp(start_time, "start_time"),
            end_time=timestamp(end_time, "end_time"),
            page_size=page_size,
            page_token=page_token,
        ),
        caller,
    )
    return VisitPage.of(reply)


@router.post(
    "/households/{household_id}/visits",
    response_model=Visit,
    status_code=201,
    summary="Record a home visit (the caller is the visitor)",
)
async def record_visit(
    request: Request,
    response: Response,
    household_id: HouseholdId,
    body: NewVisit,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Visit:
    reply = await call(
        request,
        _blocks(request).RecordVisit,
        pb.RecordVisitRequest(
            visit=body.to_pb(pb.Visit, household=f"households/{household_id}"),
            request_id=idempotency_key or "",
        ),
        caller,
    )
    visit = Visit.of(reply)
    response.headers["Location"] = f"/api/v1/households/{household_id}/visits/{visit.id}"
    return visit


@router.get(
    "/nodes/{node}/visits", response_model=VisitPage, summary="Visits to households at or below a node"
)
async def list_node_visits(
    request: Request,
    node: NodeRef,
    caller: CallerDep,
    start_time: StartTime = None,
    end_time: EndTime = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> VisitPage:
    reply = await call(
        request,
        _blocks(request).ListVisits,
        pb.ListVisitsRequest(
            node=path_of(node),
            start_time=timestamp(start_time, "start_time"),
            end_time=timestamp(end_time, "end_time"),
            page_size=page_size,
            page_token=page_token,
        ),
        caller,
    )
    return VisitPage.of(reply)


# ----------------------------------------------------------------------------- imports


def _too_large(detail: str = f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB") -> Problem:
    return Problem(413, f"{detail}; split it", slug="content-too-large", extra={"title": "Content Too Large"})


async def _read_file(request: Request, kind: ImportKindName) -> bytes:
    """The raw request body, refused early when its media type is wrong or it is too large."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    accepted = _IMPORT_MEDIA_TYPES[kind]
    if media_type not in accepted:
        raise Problem(415, f"a {kind.value} file is sent as {' or '.join(accepted)}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_IMPORT_BYTES:
        raise _too_large()
    content = bytearray()
    async for chunk in request.stream():
        content += chunk
        if len(content) > MAX_IMPORT_BYTES:
            raise _too_large()
    return bytes(content)


_CSV_BODY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/imports/{kind}",
    response_model=ImportResult,
    summary="Import a file: all-or-nothing, idempotent (re-importing the same file changes nothing)",
    description=(
        "The file is the raw request body: `text/csv` for nodes (path,name,kind), buildings "
        "(block_path,code,name,address), households (code,block_path,building_code,address,tags) and "
        "residents (household_code,name,relation,phone,birth_year,id_suffix); `application/geo+json` for "
        "boundaries (a FeatureCollection with properties.path). At most 200 MiB. A file with bad rows is a "
        '400 problem whose `errors` are `{field: "line 7: phone", message}`, and nothing is imported; '
        "with `validate_only` the errors come back in the 200 response instead and nothing is written."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": _CSV_BODY, "application/geo+json": {"schema": {"type": "object"}}},
        }
    },
)
@body_limit(MAX_IMPORT_BYTES)
async def import_file(
    request: Request,
    kind: ImportKindName,
    caller: CallerDep,
    validate_only: Annotated[bool, Query(description="Check everything, write nothing")] = False,
) -> ImportResult:
    content = await _read_file(request, kind)
    try:
        reply = await call(
            request,
            _blocks(request).ImportFile,
            pb.ImportFileRequest(kind=to_pb(kind), content=content, validate_only=validate_only),
            caller,
            deadline_seconds=IMPORT_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as exc:
        # gRPC's own message-size limit is not a rate limit (which RESOURCE_EXHAUSTED otherwise means).
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (exc.details() or ""):
            raise _too_large("the file is larger than the blocks service takes in one request") from None
        raise
    return ImportResult.of(reply)
