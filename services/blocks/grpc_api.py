"""Thin gRPC adapter for the blocks service."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from google.protobuf import empty_pb2

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import blocks_pb2_grpc
from govkit.auth.principal import current_principal
from govkit.errors import InvalidArgument
from govkit.grpc_server import ServicerContext
from govkit.idempotency import Command
from govkit.protobuf import optional_time, update_paths
from govkit.validation import resource_id
from services.blocks import convert
from services.blocks.flows import BlocksFlows, node_path
from services.blocks.households import HouseholdFlows
from services.blocks.imports import ImportFlows

SERVICE = "gov.blocks.v1.BlocksService"
# Initial metadata a StreamImportFile caller waits for before it sends the file's content.
ADMITTED_KEY = "x-import-admitted"

log = logging.getLogger(__name__)


class BlocksServicer(blocks_pb2_grpc.BlocksServiceServicer):
    def __init__(
        self,
        tree: BlocksFlows,
        households: HouseholdFlows,
        imports: ImportFlows,
    ) -> None:
        self.tree = tree
        self.households = households
        self.imports = imports

    # region tree
    async def CreateNode(self, request: pb.CreateNodeRequest, context: ServicerContext) -> pb.Node:
        n = request.node
        row = await self.tree.create_node(
            current_principal(),
            code=n.code,
            parent=n.parent,
            kind_value=n.kind,
            display_name=n.display_name,
            boundary=n.boundary_geojson,
        )
        return convert.node(row)

    async def GetNode(self, request: pb.GetNodeRequest, context: ServicerContext) -> pb.Node:
        return convert.node(await self.tree.get_node(current_principal(), node_path(request.name)))

    async def ListNodes(self, request: pb.ListNodesRequest, context: ServicerContext) -> pb.ListNodesResponse:
        rows, token = await self.tree.list_nodes(
            current_principal(),
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
            include_retired=request.include_retired,
        )
        return pb.ListNodesResponse(nodes=[convert.node(r) for r in rows], next_page_token=token)

    async def UpdateNode(self, request: pb.UpdateNodeRequest, context: ServicerContext) -> pb.Node:
        paths = update_paths(request, {"display_name", "boundary_geojson", "parent"})
        changes = {p: getattr(request.node, p) for p in paths}
        return convert.node(
            await self.tree.update_node(current_principal(), node_path(request.node.name), changes)
        )

    async def RetireNode(self, request: pb.RetireNodeRequest, context: ServicerContext) -> pb.Node:
        return convert.node(await self.tree.retire_node(current_principal(), node_path(request.name)))

    # location and coverage
    async def LocateBlock(
        self, request: pb.LocateBlockRequest, context: ServicerContext
    ) -> pb.LocateBlockResponse:
        current_principal()
        return pb.LocateBlockResponse(block=convert.node(await self.tree.locate(request.lat, request.lng)))

    async def AuditCoverage(
        self, request: pb.AuditCoverageRequest, context: ServicerContext
    ) -> pb.CoverageReport:
        node, report, missing, blocks = await self.tree.audit_coverage(
            current_principal(), node_path(request.name)
        )
        return pb.CoverageReport(
            node=f"nodes/{node.path}",
            blocks=blocks,
            blocks_without_boundary=missing,
            parent_area_m2=report.parent_area_m2 or 0.0,
            covered_area_m2=report.covered_area_m2,
            overlaps=[
                pb.CoverageOverlap(
                    block_a=o.a, block_b=o.b, area_m2=o.area_m2, geometry_geojson=json.dumps(o.geometry)
                )
                for o in report.overlaps
            ],
            gaps=[
                pb.CoverageGap(area_m2=g.area_m2, geometry_geojson=json.dumps(g.geometry))
                for g in report.gaps
            ],
            complete=report.complete and not missing,
        )

    # staffing
    async def AssignStaff(
        self, request: pb.AssignStaffRequest, context: ServicerContext
    ) -> pb.StaffAssignment:
        a = request.assignment
        row = await self.tree.assign_staff(
            current_principal(),
            block=a.block,
            user=a.user,
            role_value=a.role,
            kind_value=a.assistant_kind,
            household_ids=list(a.household_ids),
            replace=request.replace,
        )
        return convert.staff(row, list(a.household_ids))

    async def RemoveStaff(self, request: pb.RemoveStaffRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self.tree.remove_staff(current_principal(), request.name)
        return empty_pb2.Empty()

    async def ListStaff(self, request: pb.ListStaffRequest, context: ServicerContext) -> pb.ListStaffResponse:
        rows, token = await self.tree.list_staff(
            current_principal(),
            node=request.node,
            user=request.user,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListStaffResponse(assignments=[convert.staff(r) for r in rows], next_page_token=token)

    async def AuditStaffing(
        self, request: pb.AuditStaffingRequest, context: ServicerContext
    ) -> pb.StaffingAudit:
        blocks, complete, violations = await self.tree.audit_staffing(
            current_principal(), node_path(request.node, "node")
        )
        return pb.StaffingAudit(
            blocks=blocks,
            complete_blocks=complete,
            violations=[pb.StaffingViolation(block=b, rule=r) for b, r in violations],
        )

    # buildings and households
    async def CreateBuilding(
        self, request: pb.CreateBuildingRequest, context: ServicerContext
    ) -> pb.Building:
        return convert.building(await self.households.create_building(current_principal(), request.building))

    async def ListBuildings(
        self, request: pb.ListBuildingsRequest, context: ServicerContext
    ) -> pb.ListBuildingsResponse:
        rows, token = await self.households.list_buildings(
            current_principal(), request.block, request.page_size, request.page_token
        )
        return pb.ListBuildingsResponse(buildings=[convert.building(r) for r in rows], next_page_token=token)

    async def CreateHousehold(
        self, request: pb.CreateHouseholdRequest, context: ServicerContext
    ) -> pb.Household:
        principal = current_principal()
        return await self.households.create_household(
            principal, request.household, Command.of("CreateHousehold", principal.subject, request)
        )

    async def GetHousehold(self, request: pb.GetHouseholdRequest, context: ServicerContext) -> pb.Household:
        hid = resource_id(request.name, "households")
        return convert.household(*await self.households.get_household(current_principal(), hid))

    async def ListHouseholds(
        self, request: pb.ListHouseholdsRequest, context: ServicerContext
    ) -> pb.ListHouseholdsResponse:
        rows, token = await self.households.list_households(
            current_principal(),
            node=request.node,
            page_size=request.page_size,
            page_token=request.page_token,
            tag=request.tag,
            query=request.query,
        )
        return pb.ListHouseholdsResponse(
            households=[convert.household(h, r) for h, r in rows], next_page_token=token
        )

    async def UpdateHousehold(
        self, request: pb.UpdateHouseholdRequest, context: ServicerContext
    ) -> pb.Household:
        paths = update_paths(request, {"address", "tags", "residents", "building"})
        return convert.household(
            *await self.households.update_household(current_principal(), request.household, paths)
        )

    async def MoveHousehold(self, request: pb.MoveHouseholdRequest, context: ServicerContext) -> pb.Household:
        return convert.household(
            *await self.households.move_household(
                current_principal(), request.name, request.block, request.building
            )
        )

    # visits and statistics
    async def RecordVisit(self, request: pb.RecordVisitRequest, context: ServicerContext) -> pb.Visit:
        principal = current_principal()
        return await self.households.record_visit(
            principal, request.visit, Command.of("RecordVisit", principal.subject, request)
        )

    async def ListVisits(
        self, request: pb.ListVisitsRequest, context: ServicerContext
    ) -> pb.ListVisitsResponse:
        rows, token = await self.households.list_visits(
            current_principal(),
            household=request.household,
            node=request.node,
            start=optional_time(request, "start_time"),
            end=optional_time(request, "end_time"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListVisitsResponse(visits=[convert.visit(r) for r in rows], next_page_token=token)

    async def GetNodeStatistics(
        self, request: pb.GetNodeStatisticsRequest, context: ServicerContext
    ) -> pb.NodeStatistics:
        return await self.households.statistics(
            current_principal(),
            request.name,
            optional_time(request, "start_time"),
            optional_time(request, "end_time"),
        )

    # bulk import
    async def ImportFile(
        self, request: pb.ImportFileRequest, context: ServicerContext
    ) -> pb.ImportFileResponse:
        return await self.imports.import_file(
            current_principal(), request.kind, request.content, validate_only=request.validate_only
        )

    async def StreamImportFile(
        self, request_iterator: AsyncIterator[pb.ImportFileChunk], context: ServicerContext
    ) -> pb.ImportFileResponse:
        # The platform interceptor authenticates streaming calls and maps domain errors, as for unary ones.
        first = await anext(aiter(request_iterator), None)
        if first is None:
            raise InvalidArgument("the stream is empty: the first message names the kind", field="kind")
        kind, access = await self.imports.admit(current_principal(), first.kind)
        await context.send_initial_metadata(((ADMITTED_KEY, kind),))

        async def contents() -> AsyncIterator[bytes]:
            yield first.content
            async for chunk in request_iterator:
                if chunk.kind and chunk.kind != first.kind:
                    raise InvalidArgument("only the first message names the kind", field="kind")
                yield chunk.content

        return await self.imports.receive(access, first.kind, contents(), validate_only=first.validate_only)
