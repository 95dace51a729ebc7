"""Benchmark point-to-block lookup and the coverage audit of services/blocks/geo.py.

    .venv/bin/python bench/blocks_locate.py [--blocks 10000] [--lookups 100000] [--seed 7] [--json OUT]

Builds --blocks block polygons tiling a square area near Xiangtan without gaps or overlaps: a grid of
quadrilaterals whose corners are jittered, with 4 jittered intermediate points on every edge, so each
block has 20 vertices and irregular sides, and neighbours share their edges exactly (an edge's points
are generated once and used by both blocks). Cells are 0.003° (~295 m x 333 m), about a 350-household
block in a dense district.

Then it times, in this one process and single-threaded:

  build    BlockIndex construction (copy, prepare, STRtree, warm-up)
  locate   --lookups random points over the area plus a 5% margin (some fall outside every block) and
           1% exactly on corners shared by four blocks; throughput from an untimed loop, latency
           percentiles from timing each call with perf_counter_ns. A sample is checked against a
           brute-force scan of every block first.
  audit    audit_coverage of a 700-block node (Yuhu district scale) tiled the same way, once complete
           and once damaged (one block missing, one block grown into its neighbour).

Not a test: it prints a table (and writes --json) and exits 0 unless the brute-force check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from bench._common import add_json
from services.blocks.geo import BlockIndex, area_m2, audit_coverage

ORIGIN = (112.80, 27.70)  # lng, lat of the south-west corner: Xiangtan
CELL_DEG = 0.003
CORNER_JITTER = 0.2  # of a cell, each axis
EDGE_BULGE = 0.05  # of a cell, perpendicular to the edge
EDGE_POINTS = 4  # intermediate points per edge: 4 corners + 4 x 4 = 20 vertices per block
MARGIN = 0.05  # lookups also fall this fraction of the area's size outside it
ON_VERTEX = 0.01  # fraction of lookups exactly on a vertex shared by four blocks
CHECK_SAMPLE = 2_000  # lookups verified against a brute-force scan
AUDIT_BLOCKS = (28, 25)  # rows x cols = 700
AUDIT_RUNS = 3

Blocks = list[tuple[str, BaseGeometry]]


# ----------------------------------------------------------------------------- the tiling


def grid_shape(blocks: int) -> tuple[int, int]:
    """rows x cols with rows * cols == blocks, as square as possible."""
    rows = math.isqrt(blocks)
    while blocks % rows:
        rows -= 1
    return rows, blocks // rows


def tiling(rows: int, cols: int, rng: np.random.Generator) -> tuple[Blocks, np.ndarray]:
    """Blocks tiling a jittered grid, and the (rows+1, cols+1, 2) array of their corners."""
    i, j = np.mgrid[0 : rows + 1, 0 : cols + 1]
    corners = np.stack([ORIGIN[0] + j * CELL_DEG, ORIGIN[1] + i * CELL_DEG], axis=-1).astype(float)
    corners += rng.uniform(-CORNER_JITTER, CORNER_JITTER, corners.shape) * CELL_DEG
    east = edge_points(corners[:, :-1], corners[:, 1:], rng)  # (rows+1, cols, k, 2), west to east
    north = edge_points(corners[:-1, :], corners[1:, :], rng)  # (rows, cols+1, k, 2), south to north
    rings = np.concatenate(
        [
            corners[:-1, :-1, None],  # south-west
            east[:-1],  # south side, eastwards
            corners[:-1, 1:, None],  # south-east
            north[:, 1:],  # east side, northwards
            corners[1:, 1:, None],  # north-east
            east[1:, :, ::-1],  # north side, westwards
            corners[1:, :-1, None],  # north-west
            north[:, :-1, ::-1],  # west side, southwards
        ],
        axis=2,
    )
    polygons = shapely.polygons(rings.reshape(rows * cols, -1, 2))
    paths = [f"bench/r{r:03d}/b{c:03d}" for r in range(rows) for c in range(cols)]
    return list(zip(paths, polygons, strict=True)), corners


def edge_points(start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """EDGE_POINTS points along each edge start->end, each pushed sideways by a random bulge."""
    t = np.linspace(0.0, 1.0, EDGE_POINTS + 2)[1:-1, None]
    along = start[..., None, :] + t * (end - start)[..., None, :]
    direction = end - start
    normal = np.stack([-direction[..., 1], direction[..., 0]], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    bulge = rng.uniform(-EDGE_BULGE, EDGE_BULGE, (*start.shape[:-1], EDGE_POINTS, 1)) * CELL_DEG
    return along + bulge * normal[..., None, :]


def check_tiling(blocks: Blocks) -> None:
    geoms = np.array([geom for _, geom in blocks], dtype=object)
    if not shapely.is_valid(geoms).all():
        raise SystemExit("generated an invalid block: lower CORNER_JITTER or EDGE_BULGE")


# ----------------------------------------------------------------------------- lookups


def lookup_points(n: int, corners: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) array of (lat, lng): uniform over the area plus a margin, some on shared corners."""
    lng_min, lat_min = corners[..., 0].min(), corners[..., 1].min()
    lng_max, lat_max = corners[..., 0].max(), corners[..., 1].max()
    pad_lng, pad_lat = (lng_max - lng_min) * MARGIN, (lat_max - lat_min) * MARGIN
    lats = rng.uniform(lat_min - pad_lat, lat_max + pad_lat, n)
    lngs = rng.uniform(lng_min - pad_lng, lng_max + pad_lng, n)
    inner = corners[1:-1, 1:-1].reshape(-1, 2)
    if not len(inner):  # a single row or column has no corner shared by four blocks
        return np.stack([lats, lngs], axis=1)
    on_vertex = rng.choice(n, int(n * ON_VERTEX), replace=False)
    picked = inner[rng.integers(0, len(inner), len(on_vertex))]
    lngs[on_vertex], lats[on_vertex] = picked[:, 0], picked[:, 1]
    return np.stack([lats, lngs], axis=1)


def verify(index: BlockIndex, blocks: Blocks, points: list[tuple[float, float]]) -> int:
    """Number of sample lookups that disagree with a scan of every block (smallest covering path)."""
    geoms = np.array([geom for _, geom in blocks], dtype=object)
    mismatches = 0
    for lat, lng in points:
        hits = np.flatnonzero(shapely.intersects_xy(geoms, lng, lat))
        expected = min((blocks[i][0] for i in hits), default=None)
        mismatches += index.locate(lat, lng) != expected
    return mismatches


def time_lookups(index: BlockIndex, points: list[tuple[float, float]]) -> dict[str, Any]:
    locate = index.locate
    for lat, lng in points[:1000]:  # warm caches and the allocator
        locate(lat, lng)
    started = time.perf_counter()
    outside = sum(locate(lat, lng) is None for lat, lng in points)
    elapsed = time.perf_counter() - started
    clock = time.perf_counter_ns
    latencies = []
    for lat, lng in points:
        t0 = clock()
        locate(lat, lng)
        latencies.append(clock() - t0)
    latencies.sort()
    return {
        "lookups": len(points),
        "outside": outside,
        "seconds": elapsed,
        "per_second": len(points) / elapsed,
        "p50_us": percentile(latencies, 50) / 1000,
        "p99_us": percentile(latencies, 99) / 1000,
        "max_us": latencies[-1] / 1000,
    }


def percentile(sorted_values: list[int], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(len(sorted_values) * pct / 100))
    return sorted_values[rank - 1]


# ----------------------------------------------------------------------------- audit


def time_audit(rng: np.random.Generator) -> list[dict[str, Any]]:
    blocks, _ = tiling(*AUDIT_BLOCKS, rng)
    check_tiling(blocks)
    parent = shapely.union_all([geom for _, geom in blocks])
    damaged = damage(blocks)
    return [audit_case("complete", parent, blocks), audit_case("damaged", parent, damaged)]


def damage(blocks: Blocks) -> Blocks:
    """Drop one block and grow another a little into its neighbours: one gap, overlaps, outside."""
    middle = len(blocks) // 2
    path, geom = blocks[0]
    grown = shapely.buffer(geom, CELL_DEG * 0.1, join_style="mitre")
    return [(path, grown)] + [block for i, block in enumerate(blocks) if i not in (0, middle)]


def audit_case(name: str, parent: BaseGeometry, blocks: Blocks) -> dict[str, Any]:
    runs = []
    for _ in range(AUDIT_RUNS):
        started = time.perf_counter()
        report = audit_coverage(parent, blocks)
        runs.append(time.perf_counter() - started)
    return {
        "case": name,
        "blocks": len(blocks),
        "parent_km2": area_m2(parent) / 1e6,
        "seconds_median": statistics.median(runs),
        "complete": report.complete,
        "overlaps": len(report.overlaps),
        "gaps": len(report.gaps),
        "outside": len(report.outside),
    }


# ----------------------------------------------------------------------------- report


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    rows, cols = grid_shape(args.blocks)
    started = time.perf_counter()
    blocks, corners = tiling(rows, cols, rng)
    generated = time.perf_counter() - started
    check_tiling(blocks)

    builds = []
    for _ in range(3):
        started = time.perf_counter()
        index = BlockIndex(blocks)
        builds.append(time.perf_counter() - started)

    points = [(float(lat), float(lng)) for lat, lng in lookup_points(args.lookups, corners, rng)]
    mismatches = verify(index, blocks, points[:CHECK_SAMPLE])
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "shapely": shapely.__version__,
        "geos": ".".join(map(str, shapely.geos_version)),
        "seed": args.seed,
        "grid": [rows, cols],
        "vertices_per_block": int(shapely.get_num_coordinates(blocks[0][1])) - 1,
        "generate_seconds": generated,
        "build_seconds_median": statistics.median(builds),
        "verified": {"sample": min(CHECK_SAMPLE, len(points)), "mismatches": mismatches},
        "locate": time_lookups(index, points),
        "audit": time_audit(rng),
    }


def print_report(report: dict[str, Any]) -> None:
    rows, cols = report["grid"]
    loc = report["locate"]
    print()
    print(f"blocks_locate benchmark  {report['date']}")
    print(
        f"python {report['python']}  shapely {report['shapely']}  GEOS {report['geos']}  "
        f"{report['platform']}  seed {report['seed']}"
    )
    print()
    print(f"index    {rows * cols} blocks ({rows}x{cols}, {report['vertices_per_block']} vertices each)")
    print(f"         build {report['build_seconds_median'] * 1000:.1f} ms (median of 3)")
    verified = report["verified"]
    print(
        f"         {verified['sample']} lookups checked by brute force: {verified['mismatches']} mismatches"
    )
    print()
    header = (
        f"{'locate':<8} {'lookups':>9} {'outside':>8} {'per s':>10} {'p50 us':>8} {'p99 us':>8} {'max us':>8}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'1 thread':<8} {loc['lookups']:>9} {loc['outside']:>8} {loc['per_second']:>10,.0f} "
        f"{loc['p50_us']:>8.1f} {loc['p99_us']:>8.1f} {loc['max_us']:>8.1f}"
    )
    print()
    header = (
        f"{'audit':<9} {'blocks':>6} {'km2':>7} {'ms':>8} {'complete':>9} {'overlaps':>9} "
        f"{'gaps':>5} {'outside':>8}"
    )
    print(header)
    print("-" * len(header))
    for a in report["audit"]:
        print(
            f"{a['case']:<9} {a['blocks']:>6} {a['parent_km2']:>7.1f} {a['seconds_median'] * 1000:>8.1f} "
            f"{a['complete']!s:>9} {a['overlaps']:>9} {a['gaps']:>5} {a['outside']:>8}"
        )
    print(f"(audit time: median of {AUDIT_RUNS} runs)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10_000, help="blocks in the index (default 10000)")
    parser.add_argument("--lookups", type=int, default=100_000, help="points to locate (default 100000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    add_json(parser)
    args = parser.parse_args(argv)
    if args.blocks < 4 or args.lookups < 1:
        parser.error("need --blocks >= 4 and --lookups >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if report["verified"]["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
