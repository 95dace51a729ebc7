from __future__ import annotations

import json
import math
import threading

import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from govkit.errors import InvalidArgument
from services.blocks.geo import (
    MAX_VERTICES,
    BlockIndex,
    area_m2,
    audit_coverage,
    parse_boundary,
    to_geojson,
    validate_point,
)

# A grid of 0.001° cells in Xiangtan: one cell is about 98 m (east) x 111 m (north).
LNG0, LAT0, D = 112.9, 27.85, 0.001


def x(i: float) -> float:
    return round(LNG0 + i * D, 9)  # the same float for both neighbours of a grid line


def y(j: float) -> float:
    return round(LAT0 + j * D, 9)


def cell(i: float, j: float, w: float = 1, h: float = 1) -> Polygon:
    """The cells from column i, row j, w wide and h high."""
    return box(x(i), y(j), x(i + w), y(j + h))


def approx_m2(w_cells: float, h_cells: float) -> float:
    """The plain equirectangular estimate, independent of area_m2's formula."""
    lat = math.radians(LAT0)
    return w_cells * D * 111_320 * math.cos(lat) * h_cells * D * 110_574


def ring(*corners: tuple[float, float]) -> list[list[float]]:
    return [list(c) for c in (*corners, corners[0])]


SQUARE = ring((x(0), y(0)), (x(1), y(0)), (x(1), y(1)), (x(0), y(1)))
POLYGON = {"type": "Polygon", "coordinates": [SQUARE]}


def refused(geojson: object, field: str = "boundary") -> str:
    with pytest.raises(InvalidArgument) as err:
        parse_boundary(geojson, field=field)  # type: ignore[arg-type]
    assert err.value.field == field
    return err.value.message


# ----------------------------------------------------------------------------- parse_boundary


def test_parse_polygon_from_dict_and_string() -> None:
    for given in (POLYGON, json.dumps(POLYGON)):
        geom = parse_boundary(given)
        assert isinstance(geom, Polygon)
        assert geom.equals(cell(0, 0))


def test_parse_unwraps_a_feature() -> None:
    feature = {"type": "Feature", "properties": {"name": "桃园"}, "geometry": POLYGON}
    assert parse_boundary(json.dumps(feature)).equals(cell(0, 0))


def test_parse_multipolygon_and_holes() -> None:
    outer = ring((x(0), y(0)), (x(3), y(0)), (x(3), y(3)), (x(0), y(3)))
    hole = ring((x(1), y(1)), (x(1), y(2)), (x(2), y(2)), (x(2), y(1)))
    far = ring((x(5), y(0)), (x(6), y(0)), (x(6), y(1)), (x(5), y(1)))
    geom = parse_boundary({"type": "MultiPolygon", "coordinates": [[outer, hole], [far]]})
    assert isinstance(geom, MultiPolygon)
    assert len(geom.geoms) == 2
    assert len(geom.geoms[0].interiors) == 1
    assert area_m2(geom) == pytest.approx(approx_m2(3, 3) - approx_m2(1, 1) + approx_m2(1, 1), rel=0.01)


def test_parse_drops_altitude() -> None:
    geom = parse_boundary({"type": "Polygon", "coordinates": [[[*p, 57.0] for p in SQUARE]]})
    assert not geom.has_z
    assert geom.equals(cell(0, 0))


def test_parse_uses_the_given_field_name() -> None:
    assert "malformed JSON" in refused("{", field="parent_boundary")


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "Polygon", "coordinates": [',
        "not json",
        '{"type": "Polygon",}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_parse_refuses_malformed_json(text: str) -> None:
    assert refused(text).startswith("malformed JSON")


def test_parse_refuses_nan_and_infinity_in_json() -> None:
    text = json.dumps(POLYGON).replace(str(x(0)), "NaN", 1)
    assert "NaN is not a number" in refused(text)
    text = json.dumps(POLYGON).replace(str(x(0)), "1e999", 1)  # parses to inf
    assert "must be finite" in refused(text)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"type": "Point", "coordinates": [112.9, 27.85]}, "got 'Point'"),
        ({"type": "LineString", "coordinates": SQUARE}, "got 'LineString'"),
        ({"coordinates": [SQUARE]}, "got None"),
        ({"type": "FeatureCollection", "features": []}, "send one Feature or geometry"),
        ({"type": "Feature", "geometry": None}, "Feature has no geometry"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}}, "got 'Point'"),
        ("[1, 2]", "expected a GeoJSON object, got a JSON list"),
        (42, "expected a GeoJSON object or string, got int"),
        ({"type": "Polygon"}, "Polygon has no 'coordinates'"),
        ({"type": "Polygon", "coordinates": "[[...]]"}, "must be an array of linear rings"),
        ({"type": "Polygon", "coordinates": [[[112.9]] * 4]}, "coordinates[0][0]: a position must be"),
    ],
)
def test_parse_refuses_wrong_types(given: object, expected: str) -> None:
    assert expected in refused(given)


def test_parse_refuses_longitude_out_of_range() -> None:
    bad = ring((180.5, 27.85), (180.6, 27.85), (180.6, 27.86))
    assert refused({"type": "Polygon", "coordinates": [bad]}) == (
        "coordinates[0][0]: longitude 180.5 is out of range -180..180"
    )


def test_parse_refuses_latitude_out_of_range_and_suspects_swapped_axes() -> None:
    swapped = [[lat, lng] for lng, lat in SQUARE]  # [lat, lng]: 112.9 is no latitude
    message = refused({"type": "Polygon", "coordinates": [swapped]})
    assert message.startswith("coordinates[0][0]: latitude 112.9 is out of range -90..90")
    assert "were they swapped?" in message


@pytest.mark.parametrize(
    ("value", "kind"), [("112.9", "string"), (True, "boolean"), (None, "null"), ([112.9], "array")]
)
def test_parse_refuses_non_numeric_coordinates(value: object, kind: str) -> None:
    bad = [list(p) for p in SQUARE]
    bad[2][0] = value
    message = refused({"type": "Polygon", "coordinates": [bad]})
    assert message == f"coordinates[0][2][0]: coordinate must be a number, got {kind}"


def test_parse_refuses_nan_in_a_dict() -> None:
    bad = [list(p) for p in SQUARE]
    bad[1][1] = math.nan
    assert refused({"type": "Polygon", "coordinates": [bad]}) == (
        "coordinates[0][1][1]: coordinate must be finite, got nan"
    )


def test_parse_refuses_unclosed_ring() -> None:
    message = refused({"type": "Polygon", "coordinates": [[*SQUARE[:-1], SQUARE[1]]]})
    assert message.startswith("coordinates[0]: ring is not closed")


def test_parse_refuses_too_short_ring() -> None:
    triangle_open = SQUARE[:3]
    message = refused({"type": "Polygon", "coordinates": [triangle_open]})
    assert message == "coordinates[0]: a linear ring needs at least 4 positions, got 3"
    message = refused({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE[:2]]]})
    assert message.startswith("coordinates[1][0]: a linear ring needs at least 4 positions")


def test_parse_refuses_self_intersection() -> None:
    bowtie = ring((x(0), y(0)), (x(1), y(1)), (x(1), y(0)), (x(0), y(1)))
    message = refused({"type": "Polygon", "coordinates": [bowtie]})
    assert message.startswith("invalid geometry: Self-intersection")


@pytest.mark.parametrize(
    ("coordinates", "kind", "expected"),
    [
        ([SQUARE, ring((x(2), y(2)), (x(3), y(2)), (x(3), y(3)))], "Polygon", "Hole lies outside shell"),
        ([[SQUARE], [[[v[0] + D / 2, v[1]] for v in SQUARE]]], "MultiPolygon", "Self-intersection"),
        ([ring((x(0), y(0)), (x(1), y(0)), (x(2), y(0)))], "Polygon", "Self-intersection"),  # no area
    ],
)
def test_parse_refuses_invalid_geometry(coordinates: list, kind: str, expected: str) -> None:
    message = refused({"type": kind, "coordinates": coordinates})
    assert message.startswith(f"invalid geometry: {expected}")


@pytest.mark.parametrize(
    ("kind", "coordinates", "expected"),
    [
        ("Polygon", [], "coordinates: empty Polygon"),
        ("MultiPolygon", [], "coordinates: empty MultiPolygon"),
        ("MultiPolygon", [[]], "coordinates[0]: empty Polygon"),
    ],
)
def test_parse_refuses_empty_geometry(kind: str, coordinates: list, expected: str) -> None:
    assert refused({"type": kind, "coordinates": coordinates}).startswith(expected)


def circle(vertices: int) -> list[list[float]]:
    """A closed ring of exactly `vertices` positions."""
    steps = vertices - 1
    points = [
        [x(5) + 0.004 * math.cos(2 * math.pi * k / steps), y(5) + 0.004 * math.sin(2 * math.pi * k / steps)]
        for k in range(steps)
    ]
    return [*points, points[0]]


def test_parse_vertex_limit_counts_every_ring() -> None:
    assert isinstance(parse_boundary({"type": "Polygon", "coordinates": [circle(MAX_VERTICES)]}), Polygon)
    message = refused({"type": "Polygon", "coordinates": [circle(MAX_VERTICES + 1)]})
    assert message == f"coordinates[0]: too many vertices: more than {MAX_VERTICES} in the boundary"
    hole = ring((x(5), y(5)), (x(5.5), y(5)), (x(5.5), y(5.5)))
    message = refused({"type": "Polygon", "coordinates": [circle(MAX_VERTICES - 2), hole]})
    assert message.startswith("coordinates[1]: too many vertices")


# ----------------------------------------------------------------------------- output, points, area


def test_to_geojson_is_plain_lists_wound_counter_clockwise_and_round_trips() -> None:
    clockwise = Polygon(SQUARE[::-1], [ring((x(0.2), y(0.2)), (x(0.4), y(0.2)), (x(0.4), y(0.4)))])
    out = to_geojson(clockwise)
    assert out["type"] == "Polygon"
    assert isinstance(out["coordinates"], list)
    assert all(isinstance(p, list) for p in out["coordinates"][0])
    assert shapely.is_ccw(shapely.LinearRing(out["coordinates"][0]))
    assert not shapely.is_ccw(shapely.LinearRing(out["coordinates"][1]))
    assert json.loads(json.dumps(out)) == out
    assert parse_boundary(out).equals(clockwise)


def test_validate_point() -> None:
    validate_point(27.85, 112.9)
    validate_point(-90, 180)
    for lat, lng, field, expected in [
        (90.5, 112.9, "lat", "90.5 is out of range -90..90"),
        (27.85, -181, "lng", "-181 is out of range -180..180"),
        (math.nan, 112.9, "lat", "must be finite, got nan"),
        (27.85, math.inf, "lng", "must be finite, got inf"),
        ("27.85", 112.9, "lat", "must be a number, got string"),
        (27.85, True, "lng", "must be a number, got boolean"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            validate_point(lat, lng)  # type: ignore[arg-type]
        assert err.value.field == field
        assert err.value.message == expected


def test_area_matches_the_ellipsoid() -> None:
    # Closed-form area of a lat/lng rectangle on the WGS84 ellipsoid (via the authalic latitude).
    a, e2 = 6_378_137.0, 6.694_379_990_14e-3
    e = math.sqrt(e2)

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    for size in (D, 0.05, 0.5):  # a block, a 5 km street, a 50 km district
        exact = a * a * (1 - e2) * math.radians(size) / 2 * (q(LAT0 + size) - q(LAT0))
        assert area_m2(box(LNG0, LAT0, LNG0 + size, LAT0 + size)) == pytest.approx(exact, rel=1e-5)
    assert area_m2(cell(0, 0)) == pytest.approx(approx_m2(1, 1), rel=0.005)
    assert area_m2(Polygon()) == 0.0


# ----------------------------------------------------------------------------- BlockIndex


def test_locate_inside_and_outside() -> None:
    index = BlockIndex([("yuhu/a/b1", cell(0, 0)), ("yuhu/a/b2", cell(1, 0))])
    assert len(index) == 2
    assert index.locate(y(0.5), x(0.5)) == "yuhu/a/b1"
    assert index.locate(y(0.5), x(1.5)) == "yuhu/a/b2"
    assert index.locate(y(1.5), x(0.5)) is None  # inside the envelope of nothing
    assert index.locate(y(0.5), x(2.5)) is None
    assert index.locate(math.nan, math.nan) is None
    assert index.locate(math.inf, x(0.5)) is None


@pytest.mark.parametrize("reverse", [False, True])
def test_locate_on_a_shared_edge_takes_the_smallest_path(reverse: bool) -> None:
    # The smaller path is the eastern block, so neither "first given" nor "westmost" would pass.
    blocks = [("yuhu/a/b9", cell(0, 0)), ("yuhu/a/b10", cell(1, 0))]
    index = BlockIndex(blocks[::-1] if reverse else blocks)
    on_edge = (y(0.5), x(1))
    assert {index.locate(*on_edge) for _ in range(20)} == {"yuhu/a/b10"}
    assert index.locate(y(0.5), x(0.99)) == "yuhu/a/b9"


def test_locate_on_a_vertex_shared_by_four_blocks() -> None:
    blocks = [
        ("yuhu/a/b3", cell(0, 0)),
        ("yuhu/a/b4", cell(1, 0)),
        ("yuhu/a/b2", cell(0, 1)),
        ("yuhu/a/b5", cell(1, 1)),
    ]
    for order in (blocks, blocks[::-1], blocks[1:] + blocks[:1]):
        assert BlockIndex(order).locate(y(1), x(1)) == "yuhu/a/b2"


def test_locate_on_the_outer_boundary_belongs_to_the_block() -> None:
    index = BlockIndex([("yuhu/a/b1", cell(0, 0)), ("yuhu/a/b2", cell(1, 0))])
    assert index.locate(y(0), x(1.5)) == "yuhu/a/b2"  # south edge
    assert index.locate(y(1), x(2)) == "yuhu/a/b2"  # north-east corner
    assert index.locate(y(0.5), x(0)) == "yuhu/a/b1"  # west edge


def test_locate_respects_holes_and_multipolygons() -> None:
    donut = box(x(0), y(0), x(3), y(3)).difference(cell(1, 1))
    parts = MultiPolygon([cell(5, 0), cell(7, 0)])
    index = BlockIndex([("yuhu/a/donut", donut), ("yuhu/a/parts", parts)])
    assert index.locate(y(1.5), x(1.5)) is None  # in the hole
    assert index.locate(y(1), x(1.5)) == "yuhu/a/donut"  # on the hole's edge: boundary counts
    assert index.locate(y(0.5), x(7.5)) == "yuhu/a/parts"
    assert index.locate(y(0.5), x(6.5)) is None  # between the parts


def test_locate_hole_filled_by_another_block() -> None:
    donut = box(x(0), y(0), x(3), y(3)).difference(cell(1, 1))
    index = BlockIndex([("yuhu/a/a-outer", donut), ("yuhu/a/z-inner", cell(1, 1))])
    assert index.locate(y(1.5), x(1.5)) == "yuhu/a/z-inner"


def test_index_refuses_duplicates_and_non_polygons() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        BlockIndex([("yuhu/a/b1", cell(0, 0)), ("yuhu/a/b1", cell(1, 0))])
    with pytest.raises(TypeError, match="Polygon or MultiPolygon"):
        BlockIndex([("yuhu/a/b1", shapely.Point(x(0), y(0)))])


def test_index_is_empty_safe_and_leaves_caller_geometries_alone() -> None:
    assert BlockIndex([]).locate(y(0.5), x(0.5)) is None
    mine = cell(0, 0)
    BlockIndex([("yuhu/a/b1", mine)])
    assert not shapely.is_prepared(mine)


def test_locate_from_many_threads_agrees_with_one() -> None:
    blocks = [(f"yuhu/a/r{j}/b{i}", cell(i, j)) for i in range(10) for j in range(10)]
    points = [(y(j / 4), x(i / 4)) for i in range(-2, 43) for j in range(-2, 43)]  # edges and corners too
    index = BlockIndex(blocks)
    expected = [index.locate(*p) for p in points]
    results: dict[int, list[str | None]] = {}
    fresh = BlockIndex(blocks)  # lookups race on a new index from the start
    start = threading.Barrier(8)

    def run(n: int) -> None:
        start.wait()
        results[n] = [fresh.locate(*p) for p in points]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == expected for n in range(8))
    assert expected.count(None) == len(points) - 41 * 41  # 41 quarter steps across 0..10 per axis


# ----------------------------------------------------------------------------- audit_coverage

PARENT = box(x(0), y(0), x(2), y(2))


def tiles() -> list[tuple[str, Polygon]]:
    return [(f"yuhu/a/b{i}{j}", cell(i, j)) for i in range(2) for j in range(2)]


def test_audit_complete_tiling() -> None:
    report = audit_coverage(PARENT, tiles())
    assert report.complete
    assert (report.overlaps, report.gaps, report.outside) == ([], [], [])
    assert report.parent_area_m2 == pytest.approx(approx_m2(2, 2), rel=0.01)
    assert report.covered_area_m2 == pytest.approx(report.parent_area_m2)


def test_audit_complete_with_a_multipolygon_block() -> None:
    blocks = [
        ("yuhu/a/split", MultiPolygon([cell(0, 0), cell(1, 1)])),
        ("yuhu/a/b01", cell(0, 1)),
        ("yuhu/a/b10", cell(1, 0)),
    ]
    assert audit_coverage(PARENT, blocks).complete


def test_audit_reports_a_planted_overlap() -> None:
    blocks = dict(tiles())
    blocks["yuhu/a/b11"] = cell(0.6, 1, w=1.4)  # reaches 0.4 cell into b01
    report = audit_coverage(PARENT, list(blocks.items()))
    assert not report.complete
    assert (report.gaps, report.outside) == ([], [])
    [overlap] = report.overlaps
    assert (overlap.a, overlap.b) == ("yuhu/a/b01", "yuhu/a/b11")
    assert overlap.area_m2 == pytest.approx(approx_m2(0.4, 1), rel=0.05)
    assert parse_boundary(overlap.geometry).equals(cell(0.6, 1, w=0.4))


def test_audit_reports_a_block_inside_another() -> None:
    blocks = [*tiles(), ("yuhu/a/b00-annex", cell(0.25, 0.25, w=0.5, h=0.5))]
    [overlap] = audit_coverage(PARENT, blocks).overlaps
    assert (overlap.a, overlap.b) == ("yuhu/a/b00", "yuhu/a/b00-annex")
    assert overlap.area_m2 == pytest.approx(approx_m2(0.5, 0.5), rel=0.05)


def test_audit_reports_a_planted_gap() -> None:
    blocks = [block for block in tiles() if block[0] != "yuhu/a/b10"]
    report = audit_coverage(PARENT, blocks)
    assert not report.complete
    [gap] = report.gaps
    assert gap.area_m2 == pytest.approx(approx_m2(1, 1), rel=0.05)
    assert parse_boundary(gap.geometry).equals(cell(1, 0))
    assert report.covered_area_m2 == pytest.approx(approx_m2(2, 2) - approx_m2(1, 1), rel=0.05)
    assert (report.overlaps, report.outside) == ([], [])


def test_audit_reports_each_gap_polygon() -> None:
    blocks = [block for block in tiles() if block[0] in ("yuhu/a/b01", "yuhu/a/b10")]
    assert len(audit_coverage(PARENT, blocks).gaps) == 2  # two cells meeting at a corner


def test_audit_reports_a_block_outside_the_parent() -> None:
    blocks = dict(tiles())
    blocks["yuhu/a/b10"] = cell(1, 0, w=1.5)  # half a cell east of the parent
    report = audit_coverage(PARENT, list(blocks.items()))
    assert not report.complete
    [(path, area)] = report.outside
    assert path == "yuhu/a/b10"
    assert area == pytest.approx(approx_m2(0.5, 1), rel=0.05)
    assert (report.overlaps, report.gaps) == ([], [])


def test_audit_ignores_slivers_below_min_area() -> None:
    nudge = 1e-8  # degrees: about 1 mm, so slivers of ~0.1 m² along a 111 m edge
    blocks = dict(tiles())
    blocks["yuhu/a/b00"] = box(x(0), y(0), x(1) + nudge, y(1))  # sliver overlap with b10
    blocks["yuhu/a/b01"] = box(x(0), y(1), x(1) - nudge, y(2))  # sliver gap next to b11
    blocks["yuhu/a/b11"] = box(x(1), y(1), x(2) + nudge, y(2))  # sliver outside the parent
    assert audit_coverage(PARENT, list(blocks.items())).complete
    strict = audit_coverage(PARENT, list(blocks.items()), min_area_m2=0.01)
    assert (len(strict.overlaps), len(strict.gaps), len(strict.outside)) == (1, 1, 1)
    assert strict.overlaps[0].area_m2 == pytest.approx(0.1, rel=0.2)


def test_audit_without_parent_only_looks_for_overlaps() -> None:
    blocks = [("yuhu/a/b1", cell(0, 0)), ("yuhu/a/b2", cell(0.5, 0)), ("yuhu/a/b3", cell(9, 9))]
    report = audit_coverage(None, blocks)
    assert report.parent_area_m2 is None
    assert (report.gaps, report.outside) == ([], [])
    assert [(o.a, o.b) for o in report.overlaps] == [("yuhu/a/b1", "yuhu/a/b2")]
    assert report.covered_area_m2 == pytest.approx(approx_m2(1.5, 1) + approx_m2(1, 1), rel=0.01)


def test_audit_of_no_blocks_is_one_big_gap() -> None:
    report = audit_coverage(PARENT, [])
    assert [gap.area_m2 for gap in report.gaps] == [pytest.approx(report.parent_area_m2)]
    assert report.covered_area_m2 == 0.0
