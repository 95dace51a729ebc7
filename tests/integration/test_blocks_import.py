"""Bulk import through the real service: a whole demo street, idempotent, all-or-nothing per file."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from demo.generate import wanlou_demo
from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from tests.support.identity import IdentityClient, md

# The demo street, moved to its own district code and 20 degrees east, so that its blocks
# share neither paths nor ground with other tests' blocks in the same database.
SHIFT_LNG = 20.0


def _files(district: str) -> list[tuple[int, bytes]]:
    files = wanlou_demo(households=400)
    boundaries = json.loads(files.boundaries_geojson)
    for feature in boundaries["features"]:
        geometry = feature["geometry"]
        polygons = (
            geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        )
        for polygon in polygons:
            for ring in polygon:
                for position in ring:
                    position[0] += SHIFT_LNG

    def moved(text: str) -> bytes:
        return text.replace("yuhu", district).replace("WL-", f"{district}-").encode()

    return [
        (pb.IMPORT_KIND_NODES, moved(files.nodes_csv)),
        (pb.IMPORT_KIND_BOUNDARIES, moved(json.dumps(boundaries, ensure_ascii=False))),
        (pb.IMPORT_KIND_BUILDINGS, moved(files.buildings_csv)),
        (pb.IMPORT_KIND_HOUSEHOLDS, moved(files.households_csv)),
        (pb.IMPORT_KIND_RESIDENTS, moved(files.residents_csv)),
    ]


async def test_demo_street_imports_once_and_reimports_as_unchanged(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    district = f"d{uuid.uuid4().hex[:8]}"
    admin = md(identity.admin_token)
    files = _files(district)
    for kind, content in files:
        first = await blocks.ImportFile(pb.ImportFileRequest(kind=kind, content=content), metadata=admin)
        assert first.rows > 0 and first.created + first.updated == first.rows, (kind, first)
    for kind, content in files:
        again = await blocks.ImportFile(pb.ImportFileRequest(kind=kind, content=content), metadata=admin)
        assert (again.created, again.updated, again.unchanged) == (0, 0, again.rows), (kind, again)

    street = f"{district}/wanlou"
    stats = await blocks.GetNodeStatistics(pb.GetNodeStatisticsRequest(name=street), metadata=admin)
    assert (stats.blocks, stats.households) == (17, 400)
    assert stats.residents == files[4][1].decode().count("\n") - 1
    # The generated blocks tile the street: no overlap, no gap.
    report = await blocks.AuditCoverage(pb.AuditCoverageRequest(name=street), metadata=admin)
    assert report.complete and report.blocks == 17 and not report.overlaps and not report.gaps
    # A point in the middle of the street lies in exactly one of its blocks.
    located = await blocks.LocateBlock(
        pb.LocateBlockRequest(lat=27.855, lng=112.915 + SHIFT_LNG), metadata=admin
    )
    assert located.block.path.startswith(street + "/")


async def test_a_bad_row_fails_the_whole_file_with_its_line_number(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    district = f"d{uuid.uuid4().hex[:8]}"
    admin = md(identity.admin_token)
    nodes = (
        "path,name,kind\n"
        f"{district},测试区,district\n"
        f"{district}/s1,一街道,street\n"
        f"{district}/s1/c1/b1/x,太深,block\n"  # line 4: five levels
        f"{district}/s1/c1,一社区,community\n"
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await blocks.ImportFile(
            pb.ImportFileRequest(kind=pb.IMPORT_KIND_NODES, content=nodes.encode()), metadata=admin
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "line 4" in err.value.details()
    # Nothing from the good rows was committed.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await blocks.GetNode(pb.GetNodeRequest(name=district), metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # A row that parses but refers to a parent that does not exist: caught while applying, same outcome.
    orphan = f"path,name,kind\n{district},测试区,district\n{district}/nowhere/c1,孤儿社区,community\n"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await blocks.ImportFile(
            pb.ImportFileRequest(kind=pb.IMPORT_KIND_NODES, content=orphan.encode()), metadata=admin
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "line 3" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await blocks.GetNode(pb.GetNodeRequest(name=district), metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # validate_only reports the errors and writes nothing, even for a good file.
    good = f"path,name,kind\n{district},测试区,district\n".encode()
    checked = await blocks.ImportFile(
        pb.ImportFileRequest(kind=pb.IMPORT_KIND_NODES, content=good, validate_only=True), metadata=admin
    )
    assert (checked.rows, checked.created, list(checked.errors)) == (1, 1, [])
    with pytest.raises(grpc.aio.AioRpcError):
        await blocks.GetNode(pb.GetNodeRequest(name=district), metadata=admin)


async def test_only_tree_managers_may_import(blocks: BlocksServiceStub, identity: IdentityClient) -> None:
    street = f"d{uuid.uuid4().hex[:8]}/s1"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    content = f"path,name,kind\n{street.split('/')[0]},测试区,district\n".encode()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await blocks.ImportFile(
            pb.ImportFileRequest(kind=pb.IMPORT_KIND_NODES, content=content), metadata=md(dispatcher)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not manage" in err.value.details()
