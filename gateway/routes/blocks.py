"""Blocks: the region tree, 1+N+1 staffing, location and coverage, buildings, households, visits, imports.

A node path goes into one URL segment with dots: `yuhu/wanlou/taoyuan/b07` is
`/api/v1/nodes/yuhu.wanlou.taoyuan.b07`. Each route is one upstream call to the BlocksService, declared
with gateway.rest.routes (the file import is written out); JSON shapes live in gateway.blocks_resources.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from opentelemetry import propagate

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
from gateway.params import body_limit, free_text
from gateway.problems import Problem
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import Caller, CallerDep, call, upstreams
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

# A boundary of MAX_BOUNDARY_POSITIONS pretty-printed is about 2 MiB, above the default body limit.
BOUNDARY_BODY_BYTES = 4 * 1024 * 1024
MIB = 1024 * 1024
# As the blocks service takes them (services/blocks/imports.py): nodes and boundaries are parsed whole.
# Keyed by ImportKindName value (its members come from the proto enum, which a type checker does not read).
MAX_IMPORT_BYTES: dict[str, int] = {
    "nodes": 16 * MIB,
    "boundaries": 16 * MIB,
    "buildings": 200 * MIB,
    "households": 200 * MIB,
    "residents": 200 * MIB,
}
# The upload goes on to the service in messages of this size, as it arrives: never whole in memory.
IMPORT_CHUNK_BYTES = 1 * MIB
# Initial metadata with which StreamImportFile admits the caller (see blocks.proto).
IMPORT_ADMITTED_KEY = "x-import-admitted"
# Client-streaming calls written message by message: traced by hand (see govkit.telemetry).
UNTRACED_CLIENT_METHODS = ("/gov.blocks.v1.BlocksService/StreamImportFile",)
_IMPORT_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "nodes": ("text/csv",),
    "boundaries": ("application/geo+json", "application/json"),
    "buildings": ("text/csv",),
    "households": ("text/csv",),
    "residents": ("text/csv",),
}


def _blocks(request: Request) -> BlocksServiceStub:
    return upstreams(request).blocks


api = Endpoints(router, _blocks)


# ----------------------------------------------------------------------------- region tree

api.get(
    "/nodes",
    "list_nodes",
    rpc="ListNodes",
    view=NodePage,
    summary="List the children of a node, or the districts",
    params={
        "parent": Param(
            Annotated[
                str,
                Query(
                    max_length=NODE_REF_MAX_LENGTH,
                    pattern=rf"^$|{NODE_REF_PATTERN}",
                    description="Parent node's ref (dots); empty lists the districts",
                ),
            ],
            "",
        ),
        "include_retired": Param(bool, False),
        **PAGE,
    },
    message=lambda parent, include_retired, page_size, page_token: pb.ListNodesRequest(
        parent=path_of(parent), include_retired=include_retired, page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/nodes",
    "create_node",
    rpc="CreateNode",
    view=Node,
    status_code=201,
    summary="Create a node of the region tree",
    body=NewNode,
    max_body_bytes=BOUNDARY_BODY_BYTES,
    message=lambda body: pb.CreateNodeRequest(node=body.to_pb(pb.Node)),
    location=lambda node, _: f"/nodes/{node.ref}",
)
api.get(
    "/nodes/{node}",
    "get_node",
    rpc="GetNode",
    view=Node,
    summary="Get a node",
    params={"node": NodeRef},
    message=lambda node: pb.GetNodeRequest(name=path_of(node)),
)


def _update_node(node: str, body: NodePatch) -> pb.UpdateNodeRequest:
    message, mask = body.patch(pb.Node, name=f"nodes/{path_of(node)}")
    return pb.UpdateNodeRequest(node=message, update_mask=mask)


api.patch(
    "/nodes/{node}",
    "update_node",
    rpc="UpdateNode",
    view=Node,
    summary="Rename, re-boundary or move a node (fields present are changed)",
    description="A move (`parent`) changes the path of the node and everything below it; codes never change.",
    params={"node": NodeRef},
    body=NodePatch,
    max_body_bytes=BOUNDARY_BODY_BYTES,
    message=_update_node,
)
api.post(
    "/nodes/{node}/retire",
    "retire_node",
    rpc="RetireNode",
    view=Node,
    summary="Retire a node (409 while active children or households remain)",
    params={"node": NodeRef},
    message=lambda node: pb.RetireNodeRequest(name=path_of(node)),
)
api.get(
    "/locate",
    "locate_block",
    rpc="LocateBlock",
    view=Node,
    summary="The block containing a WGS84 point (404 outside every block)",
    params={"lat": Annotated[float, Query(ge=-90, le=90)], "lng": Annotated[float, Query(ge=-180, le=180)]},
    message=lambda lat, lng: pb.LocateBlockRequest(lat=lat, lng=lng),
    reply=lambda reply: reply.block,
)
api.get(
    "/nodes/{node}/coverage",
    "audit_coverage",
    rpc="AuditCoverage",
    view=CoverageReport,
    summary="Overlaps between the node's blocks and gaps in its area no block covers",
    params={"node": NodeRef},
    message=lambda node: pb.AuditCoverageRequest(name=path_of(node)),
)


# ----------------------------------------------------------------------------- staffing

api.get(
    "/nodes/{node}/staff",
    "list_staff",
    rpc="ListStaff",
    view=StaffPage,
    summary="Staff of the block, or of every block below the node",
    params={
        "node": NodeRef,
        "user": Param(
            Annotated[
                str, Query(max_length=70, pattern=rf"^$|{USER_PATTERN}", description="Only this person")
            ],
            "",
        ),
        **PAGE,
    },
    message=lambda node, user, page_size, page_token: pb.ListStaffRequest(
        node=path_of(node), user=user, page_size=page_size, page_token=page_token
    ),
)


def _assign_staff(node: str, body: NewStaffAssignment) -> pb.AssignStaffRequest:
    assignment = body.to_pb(pb.StaffAssignment, skip={"replace"}, block=path_of(node))
    return pb.AssignStaffRequest(assignment=assignment, replace=body.replace)


api.post(
    "/nodes/{node}/staff",
    "assign_staff",
    rpc="AssignStaff",
    view=StaffAssignment,
    status_code=201,
    summary="Assign a person to a block role",
    description=(
        "Enforces 1+N+1: one governor, one supervisor, any number of assistants; the supervisor is neither "
        "the governor nor an assistant. A violation is a 409 problem naming the rule."
    ),
    params={"node": NodeRef},
    body=NewStaffAssignment,
    message=_assign_staff,
    location=lambda a, _: f"/nodes/{ref_of(a.block)}/staff/{a.id}",
)
api.delete(
    "/nodes/{node}/staff/{assignment_id}",
    "remove_staff",
    rpc="RemoveStaff",
    summary="Remove a person from a block",
    params={"node": NodeRef, "assignment_id": AssignmentId},
    message=lambda node, assignment_id: pb.RemoveStaffRequest(
        name=f"nodes/{path_of(node)}/staff/{assignment_id}"
    ),
)
api.get(
    "/nodes/{node}/staffing-audit",
    "audit_staffing",
    rpc="AuditStaffing",
    view=StaffingAudit,
    summary="Blocks under the node that do not meet 1+N+1, with the rule each one breaks",
    params={"node": NodeRef},
    message=lambda node: pb.AuditStaffingRequest(node=path_of(node)),
)
api.get(
    "/nodes/{node}/statistics",
    "node_statistics",
    rpc="GetNodeStatistics",
    view=NodeStatistics,
    summary="Counts for the node; visits in the period (default the last 30 days)",
    params={"node": NodeRef, "start_time": Param(StartTime, None), "end_time": Param(EndTime, None)},
    message=lambda node, start_time, end_time: pb.GetNodeStatisticsRequest(
        name=path_of(node),
        start_time=timestamp(start_time, "start_time"),
        end_time=timestamp(end_time, "end_time"),
    ),
)


# ----------------------------------------------------------------------------- buildings

api.get(
    "/nodes/{node}/buildings",
    "list_buildings",
    rpc="ListBuildings",
    view=BuildingPage,
    summary="Buildings in or below a node",
    params={"node": NodeRef, **PAGE},
    message=lambda node, page_size, page_token: pb.ListBuildingsRequest(
        block=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/nodes/{node}/buildings",
    "create_building",
    rpc="CreateBuilding",
    view=Building,
    status_code=201,
    summary="Add a building to a block",
    params={"node": NodeRef},
    body=NewBuilding,
    message=lambda node, body: pb.CreateBuildingRequest(
        building=body.to_pb(pb.Building, block=path_of(node))
    ),
    location=lambda b, _: f"/nodes/{ref_of(b.block)}/buildings/{b.code}",
)


# ----------------------------------------------------------------------------- households

api.get(
    "/nodes/{node}/households",
    "list_households",
    rpc="ListHouseholds",
    view=HouseholdPage,
    summary="Households of every block at or below the node that you may see",
    params={
        "node": NodeRef,
        "tag": Param(TagName | None, None),
        "q": Param(
            Annotated[str, free_text("q", max_length=64, description="Substring of address or code")], ""
        ),
        **PAGE,
    },
    message=lambda node, tag, q, page_size, page_token: pb.ListHouseholdsRequest(
        node=path_of(node), tag=to_pb(tag), query=q, page_size=page_size, page_token=page_token
    ),
)


@router.get(
    "/me/households", response_model=HouseholdPage, summary="Your own household file (as a linked resident)"
)
async def my_households(request: Request, caller: CallerDep) -> HouseholdPage:
    reply = await call(request, _blocks(request).ListHouseholds, pb.ListHouseholdsRequest(), caller)
    return HouseholdPage(items=[Household.of(h) for h in reply.households])


api.post(
    "/households",
    "create_household",
    rpc="CreateHousehold",
    view=Household,
    status_code=201,
    summary="Create a household",
    body=NewHousehold,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateHouseholdRequest(
        household=body.to_pb(pb.Household), request_id=idempotency_key or ""
    ),
    location=lambda h, _: f"/households/{h.id}",
)
api.get(
    "/households/{household_id}",
    "get_household",
    rpc="GetHousehold",
    view=Household,
    summary="Get a household (staff of its block and above, or a resident linked to it)",
    params={"household_id": HouseholdId},
    message=lambda household_id: pb.GetHouseholdRequest(name=f"households/{household_id}"),
)


def _update_household(household_id: str, body: HouseholdPatch) -> pb.UpdateHouseholdRequest:
    message, mask = body.patch(pb.Household, name=f"households/{household_id}")
    return pb.UpdateHouseholdRequest(household=message, update_mask=mask)


api.patch(
    "/households/{household_id}",
    "update_household",
    rpc="UpdateHousehold",
    view=Household,
    summary="Update a household (fields present are changed; residents replaces the list)",
    params={"household_id": HouseholdId},
    body=HouseholdPatch,
    message=_update_household,
)
api.post(
    "/households/{household_id}/move",
    "move_household",
    rpc="MoveHousehold",
    view=Household,
    summary="Move a household to another block (and optionally building)",
    params={"household_id": HouseholdId},
    body=HouseholdMove,
    message=lambda household_id, body: pb.MoveHouseholdRequest(
        name=f"households/{household_id}", block=body.block, building=body.building or ""
    ),
)


# ----------------------------------------------------------------------------- visits


def _visits(
    start_time: dt.datetime | None,
    end_time: dt.datetime | None,
    page_size: int,
    page_token: str,
    **scope: str,
) -> pb.ListVisitsRequest:
    """A ListVisits request for one household or one node (`scope`), with the shared filters."""
    return pb.ListVisitsRequest(
        start_time=timestamp(start_time, "start_time"),
        end_time=timestamp(end_time, "end_time"),
        page_size=page_size,
        page_token=page_token,
        **scope,
    )


VISIT_FILTERS = {"start_time": Param(StartTime, None), "end_time": Param(EndTime, None), **PAGE}

api.get(
    "/households/{household_id}/visits",
    "list_household_visits",
    rpc="ListVisits",
    view=VisitPage,
    summary="Visits to a household",
    params={"household_id": HouseholdId, **VISIT_FILTERS},
    message=lambda household_id, **filters: _visits(household=f"households/{household_id}", **filters),
)
api.post(
    "/households/{household_id}/visits",
    "record_visit",
    rpc="RecordVisit",
    view=Visit,
    status_code=201,
    summary="Record a home visit (the caller is the visitor)",
    params={"household_id": HouseholdId},
    body=NewVisit,
    idempotent=True,
    message=lambda household_id, body, idempotency_key: pb.RecordVisitRequest(
        visit=body.to_pb(pb.Visit, household=f"households/{household_id}"), request_id=idempotency_key or ""
    ),
    location=lambda visit, p: f"/households/{p['household_id']}/visits/{visit.id}",
)
api.get(
    "/nodes/{node}/visits",
    "list_node_visits",
    rpc="ListVisits",
    view=VisitPage,
    summary="Visits to households at or below a node",
    params={"node": NodeRef, **VISIT_FILTERS},
    message=lambda node, **filters: _visits(node=path_of(node), **filters),
)


# ----------------------------------------------------------------------------- imports


def _too_large(kind: ImportKindName) -> Problem:
    detail = f"a {kind.value} file may be at most {MAX_IMPORT_BYTES[kind] // MIB} MiB; split it"
    return Problem(413, detail, slug="content-too-large", extra={"title": "Content Too Large"})


def _check_upload(request: Request, kind: ImportKindName) -> None:
    """Refuse from the headers alone: a wrong media type, or a declared length over the limit."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    accepted = _IMPORT_MEDIA_TYPES[kind]
    if media_type not in accepted:
        raise Problem(415, f"a {kind.value} file is sent as {' or '.join(accepted)}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_IMPORT_BYTES[kind]:
        raise _too_large(kind)


async def _body_chunks(request: Request, kind: ImportKindName) -> AsyncIterator[bytes]:
    """The request body in IMPORT_CHUNK_BYTES pieces as it arrives; 413 once it passes the limit."""
    pending, size = bytearray(), 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_IMPORT_BYTES[kind]:
            raise _too_large(kind)
        pending += part
        while len(pending) >= IMPORT_CHUNK_BYTES:
            yield bytes(pending[:IMPORT_CHUNK_BYTES])
            del pending[:IMPORT_CHUNK_BYTES]
    if pending:
        yield bytes(pending)


async def _stream_import(
    request: Request, kind: ImportKindName, caller: Caller, validate_only: bool
) -> pb.ImportFileResponse:
    """StreamImportFile: the kind first, then (once the service has admitted the caller, so that a
    resident is refused before a byte of the file is read) the body as it arrives."""
    trace_context: dict[str, str] = {}
    propagate.inject(trace_context)  # the call is left out of the client instrumentation
    metadata = (
        ("x-request-id", request.state.request_id),
        ("authorization", f"Bearer {caller.token}"),
        *trace_context.items(),
    )
    timeout = max(IMPORT_TIMEOUT_SECONDS, upstreams(request).settings.upstream_timeout)
    stream = _blocks(request).StreamImportFile(metadata=metadata, timeout=timeout)
    try:
        await stream.write(pb.ImportFileChunk(kind=to_pb(kind), validate_only=validate_only))
        # Sent once the caller is admitted; a refusal ends the call with its status instead.
        admitted = await stream.initial_metadata()
        if IMPORT_ADMITTED_KEY in dict(admitted or ()):
            async for chunk in _body_chunks(request, kind):
                await stream.write(pb.ImportFileChunk(content=chunk))
            await stream.done_writing()
        return await stream
    except (Exception, asyncio.CancelledError):
        stream.cancel()  # the service stops reading and forgets the spooled part
        raise


_CSV_BODY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/imports/{kind}",
    response_model=ImportResult,
    summary="Import a file: all-or-nothing, idempotent (re-importing the same file changes nothing)",
    description=(
        "The file is the raw request body: `text/csv` for nodes (path,name,kind), buildings "
        "(block_path,code,name,address), households (code,block_path,building_code,address,tags) and "
        "residents (household_code,name,relation,phone,birth_year,id_suffix); `application/geo+json` for "
        "boundaries (a FeatureCollection with properties.path). At most 200 MiB (16 MiB for nodes and "
        "boundaries), streamed on to the blocks service as it arrives. A caller who may import this "
        "kind of file nowhere (a resident) gets 403 before the file is read. A file with bad rows is a "
        '400 problem whose `errors` are `{field: "line 7: phone", message}`, and nothing is imported; '
        "with `validate_only` the errors come back in the 200 response instead and nothing is written. "
        "Text cells that start like a spreadsheet formula (`=`, `+`, `-`, `@`) are refused."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": _CSV_BODY, "application/geo+json": {"schema": {"type": "object"}}},
        }
    },
)
@body_limit(max(MAX_IMPORT_BYTES.values()))  # each kind's own limit is checked in _check_upload
async def import_file(
    request: Request,
    kind: ImportKindName,
    caller: CallerDep,
    validate_only: Annotated[bool, Query(description="Check everything, write nothing")] = False,
) -> ImportResult:
    _check_upload(request, kind)
    return ImportResult.of(await _stream_import(request, kind, caller, validate_only))
