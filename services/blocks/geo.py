"""Block geometry: GeoJSON boundaries, areas, point-to-block lookup and coverage audits.

Coordinates are WGS84 degrees. GeoJSON positions are [lng, lat], and shapely works in the plane with
x = lng and y = lat, so every geometry here has x = longitude and y = latitude. Areas are converted to
square metres with a local scale (see `area_m2`); nothing else needs metres.

Plain functions without I/O: the blocks service parses boundaries at its edge with `parse_boundary`,
builds one `BlockIndex` per snapshot of the boundaries for lookups, and runs `audit_coverage` to check
the "full coverage, no overlap" rule of a node of the region tree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from govkit.errors import InvalidArgument

MAX_VERTICES = 20_000  # per boundary, closing positions included; more is refused

# WGS84 ellipsoid, for the local scale in area_m2.
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.694_379_990_14e-3
_RAD = math.pi / 180.0

_POLYGONAL = (Polygon, MultiPolygon)


# ----------------------------------------------------------------------------- parsing


def parse_boundary(geojson: str | dict[str, Any], *, field: str = "boundary") -> BaseGeometry:
    """A GeoJSON Polygon or MultiPolygon geometry (or a Feature wrapping one) in WGS84 -> shapely geometry.

    Raises InvalidArgument(field=field) whose message names the offending place, e.g.
    "coordinates[0][3]: latitude 95.2 is out of range -90..90", for: malformed JSON, a wrong type,
    coordinates out of range (lng -180..180, lat -90..90), non-numeric or non-finite coordinates,
    unclosed or too-short rings, an empty geometry, more than MAX_VERTICES positions, and geometry that
    is not valid (self-intersection, hole outside its shell, overlapping parts of a MultiPolygon...;
    the message carries shapely's explain_validity). A third (altitude) value in a position is dropped.
    """
    obj = _unwrap_feature(_load_json(geojson, field), field)
    kind = obj.get("type")
    if "coordinates" not in obj:
        raise InvalidArgument(f"{kind} has no 'coordinates'", field=field)
    reader = _CoordinateReader(field)
    if kind == "Polygon":
        geom: BaseGeometry = reader.polygon(obj["coordinates"], "coordinates")
    else:
        geom = reader.multipolygon(obj["coordinates"], "coordinates")
    if not geom.is_valid:
        raise InvalidArgument(f"invalid geometry: {explain_validity(geom)}", field=field)
    return geom


def _load_json(geojson: str | dict[str, Any], field: str) -> dict[str, Any]:
    if isinstance(geojson, dict):
        return geojson
    if not isinstance(geojson, str):
        raise InvalidArgument(
            f"expected a GeoJSON object or string, got {type(geojson).__name__}", field=field
        )
    try:
        obj = json.loads(geojson, parse_constant=_refuse_constant(field))
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON: {exc}", field=field) from exc
    except RecursionError as exc:  # "[[[[...]]]]" deep enough to exhaust the stack is an attack, not a 500
        raise InvalidArgument("malformed JSON: nested too deeply", field=field) from exc
    if not isinstance(obj, dict):
        raise InvalidArgument(f"expected a GeoJSON object, got a JSON {type(obj).__name__}", field=field)
    return obj


def _refuse_constant(field: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and not coordinates.
    def refuse(name: str) -> float:
        raise InvalidArgument(f"malformed JSON: {name} is not a number in JSON", field=field)

    return refuse


def _unwrap_feature(obj: dict[str, Any], field: str) -> dict[str, Any]:
    kind = obj.get("type")
    if kind == "Feature":
        geometry = obj.get("geometry")
        if not isinstance(geometry, dict):
            raise InvalidArgument("Feature has no geometry object", field=field)
        obj, kind = geometry, geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        hint = " (send one Feature or geometry)" if kind == "FeatureCollection" else ""
        raise InvalidArgument(
            f"type must be Polygon or MultiPolygon (or a Feature of one), got {kind!r}{hint}", field=field
        )
    return obj


class _CoordinateReader:
    """Walks GeoJSON coordinate arrays, checking them before shapely sees them, and counts positions."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.vertices = 0

    def fail(self, where: str, message: str) -> InvalidArgument:
        return InvalidArgument(f"{where}: {message}", field=self.field)

    def multipolygon(self, coords: Any, where: str) -> MultiPolygon:
        if not isinstance(coords, list):
            raise self.fail(where, "a MultiPolygon's coordinates must be an array of polygons")
        if not coords:
            raise self.fail(where, "empty MultiPolygon")
        return MultiPolygon([self.polygon(p, f"{where}[{i}]") for i, p in enumerate(coords)])

    def polygon(self, coords: Any, where: str) -> Polygon:
        if not isinstance(coords, list):
            raise self.fail(where, "a Polygon's coordinates must be an array of linear rings")
        if not coords:
            raise self.fail(where, "empty Polygon (no rings)")
        rings = [self.ring(r, f"{where}[{i}]") for i, r in enumerate(coords)]
        return Polygon(rings[0], rings[1:])

    def ring(self, coords: Any, where: str) -> list[tuple[float, float]]:
        if not isinstance(coords, list):
            raise self.fail(where, "a linear ring must be an array of positions")
        # Counted before the positions are read, so a huge array is refused without walking it.
        self.vertices += len(coords)
        if self.vertices > MAX_VERTICES:
            raise self.fail(where, f"too many vertices: more than {MAX_VERTICES} in the boundary")
        if len(coords) < 4:
            raise self.fail(where, f"a linear ring needs at least 4 positions, got {len(coords)}")
        ring = [self.position(p, f"{where}[{i}]") for i, p in enumerate(coords)]
        if ring[0] != ring[-1]:
            raise self.fail(where, f"ring is not closed: first position {ring[0]} != last {ring[-1]}")
        return ring

    def position(self, coords: Any, where: str) -> tuple[float, float]:
        if not isinstance(coords, list) or len(coords) not in (2, 3):
            raise self.fail(where, "a position must be an array [lng, lat] (or [lng, lat, altitude])")
        lng = self.number(coords[0], f"{where}[0]")
        lat = self.number(coords[1], f"{where}[1]")
        if len(coords) == 3:
            self.number(coords[2], f"{where}[2]")
        if not -180.0 <= lng <= 180.0:
            raise self.fail(where, f"longitude {lng} is out of range -180..180")
        if not -90.0 <= lat <= 90.0:
            hint = "; GeoJSON positions are [lng, lat], were they swapped?" if -90 <= lng <= 90 else ""
            raise self.fail(where, f"latitude {lat} is out of range -90..90{hint}")
        return (float(lng), float(lat))

    def number(self, value: Any, where: str) -> float:
        # bool is an int in Python; true/false in a coordinate is a client bug, not 1/0.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"coordinate must be a number, got {_json_type(value)}")
        if not math.isfinite(value):
            raise self.fail(where, f"coordinate must be finite, got {value}")
        return float(value)


def _json_type(value: Any) -> str:
    names = {bool: "boolean", str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------- output and points


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """A GeoJSON geometry dict (lists, not tuples), rings wound as RFC 7946 asks of producers:
    exterior counter-clockwise, holes clockwise. parse_boundary accepts either winding."""
    if isinstance(geom, _POLYGONAL):
        geom = shapely.orient_polygons(geom, exterior_cw=False)
    return _lists(mapping(geom))


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


def validate_point(lat: float, lng: float) -> None:
    """Raise InvalidArgument(field="lat" or "lng") unless both are finite numbers in range."""
    for name, value, limit in (("lat", lat, 90.0), ("lng", lng, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"must be a number, got {_json_type(value)}", field=name)
        if not math.isfinite(value):
            raise InvalidArgument(f"must be finite, got {value}", field=name)
        if not -limit <= value <= limit:
            raise InvalidArgument(f"{value} is out of range -{limit:g}..{limit:g}", field=name)


# ----------------------------------------------------------------------------- area


def area_m2(geom: BaseGeometry) -> float:
    """Area in square metres, from the ellipsoid's local scale at the geometry's centroid.

    Around latitude φ0 one degree of latitude is M(φ0)·π/180 metres and one degree of longitude is
    N(φ0)·cos φ0·π/180 metres (M, N: the WGS84 meridional and prime-vertical radii of curvature; about
    110_820 m and 98_500 m at Xiangtan, 27.85°N). Projecting x = lng·kx, y = lat·ky is a plain scaling,
    so the area is the planar area in square degrees times kx·ky; no coordinates need copying.

    Accuracy: the scale is exact at φ0 and its error is second order in the distance from φ0 (the
    first-order terms cancel because φ0 is the centroid). Against the closed-form area of lat/lng
    rectangles on the WGS84 ellipsoid at 27.85°N the relative error is 3e-8 for a 5 km square and 1e-5
    for a 100 km one: far below digitising error. The simpler constants 111_320·cos φ0 and 110_574
    would be 0.3% low at this latitude.
    """
    if geom.is_empty:
        return 0.0
    lat0 = geom.centroid.y * _RAD
    w = 1.0 - _WGS84_E2 * math.sin(lat0) ** 2
    meridional = _WGS84_A * (1.0 - _WGS84_E2) / w**1.5  # M
    prime_vertical = _WGS84_A / math.sqrt(w)  # N
    return geom.area * meridional * prime_vertical * math.cos(lat0) * _RAD * _RAD


# ----------------------------------------------------------------------------- point lookup


class BlockIndex:
    """Immutable spatial index of block boundaries for point lookups.

    `locate(lat, lng)` returns the path of the block whose geometry covers the point, boundary included.
    Where several do (a point on an edge shared by two blocks, on a vertex shared by four, or where
    blocks overlap) the lexicographically smallest path wins, whatever order the blocks were given in,
    so the same point always lands in the same block. A point on the outer boundary of the union still
    belongs to the block it touches; a point in a hole is not in the block; outside every block, or not
    a finite coordinate, gives None. Coordinates are not range-checked here: call validate_point first.

    Thread-safe for concurrent lookups: nothing changes after __init__. The geometries are private
    copies, and the STRtree and each prepared geometry are built eagerly, because GEOS builds some of
    their internal indexes lazily on first use, which is a data race when shapely runs it without the
    GIL in two threads at once.
    """

    __slots__ = ("_geoms", "_paths", "_tree")

    def __init__(self, blocks: Iterable[tuple[str, BaseGeometry]]) -> None:
        # Sorted by path, so tree index order is path order and the first covering candidate wins.
        pairs = sorted(blocks, key=lambda block: block[0])
        _check_blocks(pairs)
        self._paths: tuple[str, ...] = tuple(path for path, _ in pairs)
        # Copies through WKB (exact doubles), so a caller's geometry objects are neither prepared by
        # us nor able to change our prepared state later (shapely.destroy_prepared).
        geoms = shapely.from_wkb(shapely.to_wkb([geom for _, geom in pairs]))
        shapely.prepare(geoms)
        self._tree = shapely.STRtree(geoms)
        self._geoms: np.ndarray = self._tree.geometries
        self._warm_up()

    def _warm_up(self) -> None:
        # One query builds the tree; one `covers` test inside each envelope builds each geometry's
        # point-in-area locator (the same call locate makes). After this, lookups only read.
        self._tree.query(shapely.Point(0.0, 0.0))
        if len(self._paths):
            xmin, ymin, xmax, ymax = shapely.bounds(self._geoms).T
            shapely.covers(self._geoms, shapely.points((xmin + xmax) / 2, (ymin + ymax) / 2))

    def locate(self, lat: float, lng: float) -> str | None:
        """The path of the block covering the point, the smallest path on a shared edge or vertex."""
        point = shapely.Point(lng, lat)
        # Candidates are the blocks whose envelope holds the point: usually 1, up to ~4 at corners.
        # Python ints sort and index faster than numpy ones for so few.
        candidates: list[int] = self._tree.query(point).tolist()
        if len(candidates) > 1:
            candidates.sort()  # index order is path order
        for i in candidates:
            if shapely.covers(self._geoms[i], point):  # prepared: no scan of the ring
                return self._paths[i]
        return None

    def __len__(self) -> int:
        return len(self._paths)


def _check_blocks(pairs: list[tuple[str, BaseGeometry]]) -> None:
    previous = None
    for path, geom in pairs:  # sorted by path, so a duplicate follows its twin
        if not isinstance(path, str) or not path:
            raise TypeError(f"block path must be a non-empty string, got {path!r}")
        if not isinstance(geom, _POLYGONAL):
            raise TypeError(f"block {path!r}: expected a Polygon or MultiPolygon, got {type(geom).__name__}")
        if path == previous:
            raise ValueError(f"block {path!r} appears twice")
        previous = path


# ----------------------------------------------------------------------------- coverage audit


@dataclass(frozen=True)
class Overlap:
    a: str  # a < b
    b: str
    area_m2: float
    geometry: dict[str, Any]  # GeoJSON of the area both blocks claim


@dataclass(frozen=True)
class Gap:
    area_m2: float
    geometry: dict[str, Any]  # GeoJSON of one polygon of the parent that no block covers


@dataclass(frozen=True)
class CoverageReport:
    parent_area_m2: float | None
    covered_area_m2: float  # of the parent when there is one, else of the union of the blocks
    overlaps: list[Overlap]
    gaps: list[Gap]
    outside: list[tuple[str, float]]  # (block path, area in m² outside the parent)

    @property
    def complete(self) -> bool:
        """Full coverage, no overlap: the parent is exactly tiled by its blocks."""
        return not (self.overlaps or self.gaps or self.outside)


def audit_coverage(
    parent: BaseGeometry | None, blocks: Sequence[tuple[str, BaseGeometry]], *, min_area_m2: float = 1.0
) -> CoverageReport:
    """Check that blocks tile the parent: overlaps between any two blocks, gaps (parent minus the union
    of the blocks, one Gap per polygon) and parts of blocks outside the parent. With parent None only
    overlaps are looked for.

    Pieces smaller than min_area_m2 are ignored: boundaries digitised separately (another tool, another
    day, coordinates rounded to 1e-6° ≈ 0.1 m) leave hairline slivers along shared edges of far less than
    a square metre, while a real gap or overlap that strands or doubles households is hundreds of m².
    Reporting slivers would make every real-world node look broken.
    """
    paths = [path for path, _ in blocks]
    geoms = np.array([geom for _, geom in blocks], dtype=object)
    overlaps = _overlaps(paths, geoms, min_area_m2)
    union = shapely.union_all(geoms)
    if parent is None:
        return CoverageReport(None, area_m2(union), overlaps, [], [])
    gaps = [
        Gap(area, to_geojson(piece))
        for piece, area in _pieces(shapely.difference(parent, union), min_area_m2)
    ]
    return CoverageReport(
        parent_area_m2=area_m2(parent),
        covered_area_m2=area_m2(shapely.intersection(parent, union)),
        overlaps=overlaps,
        gaps=gaps,
        outside=_outside(parent, paths, geoms, min_area_m2),
    )


def _overlaps(paths: list[str], geoms: np.ndarray, min_area_m2: float) -> list[Overlap]:
    # The tree gives the pairs whose envelopes meet (about 8 neighbours each in a tiling) instead of
    # all n² pairs; DE-9IM "T********" (interiors meet) then drops neighbours that only share edges.
    left, right = shapely.STRtree(geoms).query(geoms)
    keep = left < right
    left, right = left[keep], right[keep]
    meet = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[meet], right[meet]
    found = []
    for i, j, shared in zip(left, right, shapely.intersection(geoms[left], geoms[right]), strict=True):
        pieces = _pieces(shared, min_area_m2)
        if pieces:
            a, b = sorted((paths[i], paths[j]))
            found.append(Overlap(a, b, sum(area for _, area in pieces), to_geojson(_merge(pieces))))
    return sorted(found, key=lambda o: (o.a, o.b))


def _outside(
    parent: BaseGeometry, paths: list[str], geoms: np.ndarray, min_area_m2: float
) -> list[tuple[str, float]]:
    inside = shapely.covers(parent, geoms)
    found = []
    for i in np.flatnonzero(~inside):
        pieces = _pieces(shapely.difference(geoms[i], parent), min_area_m2)
        if pieces:
            found.append((paths[i], sum(area for _, area in pieces)))
    return sorted(found)


def _pieces(geom: BaseGeometry, min_area_m2: float) -> list[tuple[Polygon, float]]:
    """The polygons in an overlay result with their areas, slivers dropped; the lines and points that
    overlays of touching shapes also return have no area and go too."""
    pieces = []
    stack = [geom]
    while stack:
        part = stack.pop()
        if isinstance(part, Polygon):
            area = area_m2(part)
            if area >= min_area_m2:
                pieces.append((part, area))
        elif hasattr(part, "geoms"):  # Multi* and GeometryCollection
            stack.extend(part.geoms)
    return sorted(pieces, key=lambda piece: -piece[1])


def _merge(pieces: list[tuple[Polygon, float]]) -> BaseGeometry:
    polygons = [piece for piece, _ in pieces]
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
