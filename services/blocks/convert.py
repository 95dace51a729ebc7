"""Rows to protobuf messages."""

from __future__ import annotations

import json

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from govkit.protobuf import from_stored_name
from govkit.rowmap import Declaration, RowMap, computed, fmt
from services.blocks import models


def enum_name(enum: EnumTypeWrapper, prefix: str, value: int) -> str | None:
    if value == 0:
        return None
    try:
        return enum.Name(value).removeprefix(f"{prefix}_").lower()
    except ValueError:
        return None


def _tags(text: str) -> list[pb.VulnerabilityTag | None]:
    return [from_stored_name(pb.VulnerabilityTag, t) for t in text.split(",") if t]


_USER = fmt("users/{user_id}", optional=True)
_HOUSEHOLD: dict[str, Declaration] = {
    "name": fmt("households/{id}"),
    "block": "block_path",
    "building": "building_code",
    "tags": computed(_tags, "tags"),
}
_VISIT: dict[str, Declaration] = {
    "name": fmt("households/{household_id}/visits/{id}"),
    "household": fmt("households/{household_id}"),
}

node = RowMap(
    pb.Node, models.Node, name=fmt("nodes/{path}"), parent="parent_path", boundary_geojson="boundary"
)
_STAFF = RowMap(
    pb.StaffAssignment,
    models.StaffAssignment,
    name=fmt("nodes/{block_path}/staff/{id}"),
    block="block_path",
    user=fmt("users/{user_id}"),
)
building = RowMap(
    pb.Building, models.Building, name=fmt("nodes/{block_path}/buildings/{code}"), block="block_path"
)
resident = RowMap(pb.Resident, models.Resident, user=_USER)
_RESIDENT_REF = RowMap(events_pb2.ResidentRef, models.Resident, user=_USER)
_HOUSEHOLD_MESSAGE = RowMap(pb.Household, models.Household, **_HOUSEHOLD)
_HOUSEHOLD_SUMMARY = RowMap(events_pb2.HouseholdSummary, models.Household, **_HOUSEHOLD)
visit = RowMap(
    pb.Visit,
    models.Visit,
    **_VISIT,
    issues_found=computed(json.loads, "issues"),
    issues_resolved=computed(json.loads, "issues_resolved"),
)
visit_summary = RowMap(
    events_pb2.VisitSummary,
    models.Visit,
    **_VISIT,
    block="block_path",
    issues_found=computed(lambda text: len(json.loads(text)), "issues"),
    issues_resolved=computed(lambda text: len(json.loads(text)), "issues_resolved"),
)


def staff(row: models.StaffAssignment, household_ids: list[str] | None = None) -> pb.StaffAssignment:
    return _STAFF(row, household_ids=household_ids)


def household(row: models.Household, residents: list[models.Resident]) -> pb.Household:
    return _HOUSEHOLD_MESSAGE(row, residents=[resident(r) for r in residents])


# ---------------------------------------------------------------- event payloads (no contact data)


def household_summary(row: models.Household, residents: list[models.Resident]) -> events_pb2.HouseholdSummary:
    return _HOUSEHOLD_SUMMARY(row, residents=[_RESIDENT_REF(r) for r in residents])
