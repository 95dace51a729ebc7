"""Test-side helpers for the blocks service: a fresh district with square blocks."""

from __future__ import annotations

import json
import uuid

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from tests.support.identity import md

LNG0, LAT0, CELL = 112.90, 27.85, 0.001  # near Xiangtan; a cell is about 98 m x 111 m


def square(col: int, row: int, cols: int = 1, rows: int = 1) -> str:
    """GeoJSON for the grid cells [col, col+cols) x [row, row+rows)."""
    x0, y0 = LNG0 + col * CELL, LAT0 + row * CELL
    x1, y1 = x0 + cols * CELL, y0 + rows * CELL
    return json.dumps(
        {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    )


def point(col: float, row: float) -> tuple[float, float]:
    """(lat, lng) of a grid position."""
    return LAT0 + row * CELL, LNG0 + col * CELL


async def make_tree(
    stub: BlocksServiceStub, token: str, blocks: dict[str, str | None], street_boundary: str = ""
) -> tuple[str, str]:
    """A new district/street/community with the given blocks {code: boundary}. Returns (street, community)."""
    district = f"d{uuid.uuid4().hex[:8]}"
    m = md(token)
    await stub.CreateNode(
        pb.CreateNodeRequest(node=pb.Node(code=district, kind=pb.NODE_KIND_DISTRICT, display_name="雨湖区")),
        metadata=m,
    )
    street = f"{district}/wanlou"
    await stub.CreateNode(
        pb.CreateNodeRequest(
            node=pb.Node(
                code="wanlou",
                parent=district,
                kind=pb.NODE_KIND_STREET,
                display_name="万楼街道",
                boundary_geojson=street_boundary,
            )
        ),
        metadata=m,
    )
    community = f"{street}/yaowan"
    await stub.CreateNode(
        pb.CreateNodeRequest(
            node=pb.Node(code="yaowan", parent=street, kind=pb.NODE_KIND_COMMUNITY, display_name="窑湾社区")
        ),
        metadata=m,
    )
    for code, boundary in blocks.items():
        await stub.CreateNode(
            pb.CreateNodeRequest(
                node=pb.Node(
                    code=code,
                    parent=community,
                    kind=pb.NODE_KIND_BLOCK,
                    display_name=f"区块{code}",
                    boundary_geojson=boundary or "",
                )
            ),
            metadata=m,
        )
    return street, community
