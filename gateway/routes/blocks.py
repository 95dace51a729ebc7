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
    to_pb,
)
from gateway.params import body_limit, free_text
from gateway.problems import Problem
from gateway.rest import Body
from gateway.rest.resource import Resource
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


api = Endpoints(router, _blocks, messages=pb)


# ----------------------------------------------------------------------------- region tree
# The service names a node by its bare path (`yuhu/wanlou`); the URL by its ref (`yuhu.wanlou`).

nodes = Resource(
    api,
    "/nodes",
    pb.Node,
    ("node", NodeRef),
    view=Node,
    page=NodePage,
    id_field="ref",
    names=lambda values: path_of(values["node"]),
)
nodes.list(
    "List the children of a node, or the districts",
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
            encode=path_of,
        ),
        "include_retired": Param(bool, False),
    },
)
nodes.create("Create a node of the region tree", body=NewNode, max_body_bytes=BOUNDARY_BODY_BYTES)
nodes.get("Get a node")


def _update_node(node: str, body: Body) -> pb.UpdateNodeRequest:
    message, mask = body.patch(pb.Node, name=f"nodes/{path_of(node)}")
    return pb.UpdateNodeRequest(node=message, update_mask=mask)


nodes.update(
    "Rename, re-boundary or move a node (fields present are changed)",
    description="A move (`parent`) changes the path of the node and everything below it; codes never change.",
    body=NodePatch,
    max_body_bytes=BOUNDARY_BODY_BYTES,
    message=_update_node,
)
nodes.action(
    "POST", "/retire", "retire_node", "Retire a node (409 while active children or households remain)"
)
api.get(
    "/locate",
    "locate_block",
    rpc="LocateBlock",
    view=Node,
    summary="The block containing a WGS84 point (404 outside every block)",
    params={"lat": Annotated[float, Query(ge=-90, le=90)], "lng": Annotated[float, Query(ge=-180, le=180)]},
    reply=lambda reply: reply.block,
)
nodes.action(
    "GET",
    "/coverage",
    "audit_coverage",
    "Overlaps between the node's blocks and gaps in its area no block covers",
    view=CoverageReport,
)


# ----------------------------------------------------------------------------- staffing

nodes.action(
    "GET",
    "/staff",
    "list_staff",
    "Staff of the block, or of every block below the node",
    view=StaffPage,
    name_field="node",
    params={
        "user": Param(
            Annotated[
                str, Query(max_length=70, pattern=rf"^$|{USER_PATTERN}", description="Only this person")
            ],
            "",
        ),
        **PAGE,
    },
)


def _assign_staff(node: str, body: NewStaffAssignment) -> pb.AssignStaffRequest:
    assignment = body.to_pb(pb.StaffAssignment, skip={"replace"}, block=path_of(node))
    return pb.AssignStaffRequest(assignment=assignment, replace=body.replace)


nodes.action(
    "POST",
    "/staff",
    "assign_staff",
    "Assign a person to a block role",
    view=StaffAssignment,
    status_code=201,
    description=(
        "Enforces 1+N+1: one governor, one supervisor, any number of assistants; the supervisor is neither "
        "the governor nor an assistant. A violation is a 409 problem naming the rule."
    ),
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
nodes.action(
    "GET",
    "/staffing-audit",
    "audit_staffing",
    "Blocks under the node that do not meet 1+N+1, with the rule each one breaks",
    view=StaffingAudit,
    name_field="node",
)
nodes.action(
    "GET",
    "/statistics",
    "node_statistics",
    "Counts for the node; visits in the period (default the last 30 days)",
    rpc="GetNodeStatistics",
    view=NodeStatistics,
    params={"start_time": Param(StartTime, None), "end_time": Param(EndTime, None)},
)


# ----------------------------------------------------------------------------- buildings

nodes.action(
    "GET",
    "/buildings",
    "list_buildings",
    "Buildings in or below a node",
    view=BuildingPage,
    name_field="block",
    params=PAGE,
)
nodes.action(
    "POST",
    "/buildings",
    "create_building",
    "Add a building to a block",
    view=Building,
    status_code=201,
    body=NewBuilding,
    message=lambda node, body: pb.CreateBuildingRequest(
        building=body.to_pb(pb.Building, block=path_of(node))
    ),
    location=lambda b, _: f"/nodes/{ref_of(b.block)}/buildings/{b.code}",
)


# ----------------------------------------------------------------------------- households

nodes.action(
    "GET",
    "/households",
    "list_households",
    "Households of every block at or below the node that you may see",
    view=HouseholdPage,
    name_field="node",
    params={
        "tag": Param(TagName | None, None),
        "q": Param(
            Annotated[str, free_text("q", max_length=64, description="Substring of address or code")],
            "",
            field="query",
        ),
        **PAGE,
    },
)


@router.get(
    "/me/households", response_model=HouseholdPage, summary="Your own household file (as a linked resident)"
)
async def my_households(request: Request, caller: CallerDep) -> HouseholdPage:
    reply = await call(request, _blocks(request).ListHouseholds, pb.ListHouseholdsRequest(), caller)
    return HouseholdPage(items=[Household.of(h) for h in reply.households])


households = Resource(api, "/households", pb.Household, ("household_id", HouseholdId), view=Household)
households.create(
    "Create a household",
    body=NewHousehold,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateHouseholdRequest(
        household=body.to_pb(pb.Household), request_id=idempotency_key or ""
    ),
)
households.get("Get a household (staff of its block and above, or a resident linked to it)")
households.update(
    "Update a household (fields present are changed; residents replaces the list)", body=HouseholdPatch
)
households.action(
    "POST",
    "/move",
    "move_household",
    "Move a household to another block (and optionally building)",
    body=HouseholdMove,
)


# ----------------------------------------------------------------------------- visits

VISIT_FILTERS = {"start_time": Param(StartTime, None), "end_time": Param(EndTime, None), **PAGE}

api.get(
    "/households/{household_id}/visits",
    "list_household_visits",
    rpc="ListVisits",
    view=VisitPage,
    summary="Visits to a household",
    params={
        "household_id": Param(HouseholdId, field="household", encode=lambda id_: f"households/{id_}"),
        **VISIT_FILTERS,
    },
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
nodes.action(
    "GET",
    "/visits",
    "list_node_visits",
    "Visits to households at or below a node",
    rpc="ListVisits",
    view=VisitPage,
    name_field="node",
    params=VISIT_FILTERS,
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
