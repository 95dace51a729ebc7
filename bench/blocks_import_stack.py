"""Peak memory of the blocks service, and of the gateway, importing a whole district over REST.

    .venv/bin/python bench/blocks_import_stack.py [--backend sqlite|postgres] [--blocks 700]
                                                  [--households 200000] [--seed 7]
                                                  [--limit-mib 300] [--json OUT]

Generates the five import files of blocks_import.py (the same generator and seed: 735 nodes and
boundaries, ~5,600 buildings, 200,000 households, ~450,000 residents), starts the stack as real
processes on fresh databases (bench/_stack.py: NATS, identity, blocks, tickets, the gateway), and
POSTs each file to /api/v1/imports/{kind}, streamed from disk in 1 MiB pieces so that this client
never holds a file either. Then every file again (every row must come back unchanged), then the
bad households file (it must fail at its line and leave the households as they were).

The blocks and gateway processes' RSS is sampled every 20 ms (peak per step), and their kernel
high-water marks (VmHWM, Linux) are read at the end: the number the bound is about. Exit status 1
if a check fails or the blocks process's high-water mark passes --limit-mib (default 300, half the
512 MiB pod limit plus headroom), 2 if the stack did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench._common import add_backend, add_json, temp_folder, write_json
from bench._stack import StackFailed, admin_token, identity_env, machine_info, running_stack, vm_hwm_mib
from bench.blocks_import import FILE_NAMES, ORDER, District, count_rows, generate
from govkit.db import Database

SAMPLE_INTERVAL = 0.02
PIECE = 1024 * 1024
REQUEST_TIMEOUT = 1800.0
MEDIA_TYPES = {"boundaries": "application/geo+json"}
WATCHED = ("blocks", "gateway")


class PeakSampler:
    """RSS of some processes every 20 ms in a thread: the peak of each since the last `mark()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peaks = dict.fromkeys(pids, 0.0)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss_mib(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                out[name] = proc.memory_info().rss / 2**20
        return out

    def _run(self) -> None:
        while not self.stopping.wait(SAMPLE_INTERVAL):
            self.sample()

    def sample(self) -> None:
        now = self.rss_mib()
        with self.lock:
            for name, value in now.items():
                self.peaks[name] = max(self.peaks[name], value)

    def mark(self) -> dict[str, float]:
        self.sample()
        with self.lock:
            peaks, self.peaks = self.peaks, dict.fromkeys(self.procs, 0.0)
        return peaks

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()


async def pieces(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while piece := await asyncio.to_thread(file.read, PIECE):
            yield piece


async def upload(client: httpx.AsyncClient, token: str, kind: str, path: Path) -> tuple[int, Any, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MEDIA_TYPES.get(kind, "text/csv")}
    started = time.perf_counter()
    reply = await client.post(f"/api/v1/imports/{kind}", content=pieces(path), headers=headers)
    return reply.status_code, reply.json(), time.perf_counter() - started


async def run_uploads(
    base_url: str, token: str, district: District, sampler: PeakSampler, blocks_url: str
) -> dict[str, Any]:
    failures: list[str] = []
    steps: list[dict[str, Any]] = []

    def expect(ok: bool, message: str) -> None:
        if not ok:
            failures.append(message)

    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        for phase in ("import", "re-import"):
            for kind in ORDER:
                sampler.mark()
                status, body, seconds = await upload(client, token, kind, district.path(kind))
                peaks = sampler.mark()
                steps.append(
                    {
                        "phase": phase,
                        "kind": kind,
                        "status": status,
                        "seconds": seconds,
                        "reply": body,
                        "peak_rss_mib": peaks,
                    }
                )
                print(
                    f"  {phase:<9} {kind:<11} {status} {seconds:8.2f} s  blocks {peaks['blocks']:6.0f} MiB"
                    f"  gateway {peaks['gateway']:5.0f} MiB",
                    flush=True,
                )
                rows = district.rows[kind]
                if status != 200:
                    expect(False, f"{phase} {kind}: HTTP {status}: {str(body)[:300]}")
                elif phase == "import":
                    created = 0 if kind == "boundaries" else rows
                    expect(
                        body["rows"] == rows and body["created"] == created,
                        f"import {kind}: {body}; expected {rows} rows, {created} created",
                    )
                else:
                    expect(body["rows"] == body["unchanged"] == rows, f"re-import {kind}: {body}")
        db = Database(blocks_url)
        try:
            in_db = await count_rows(db)
            assert district.bad_file is not None
            sampler.mark()
            status, body, seconds = await upload(client, token, "households", district.bad_file)
            peaks = sampler.mark()
            after = (await count_rows(db))["households"]
        finally:
            await db.close()
        field = body.get("errors", [{}])[0].get("field") if isinstance(body, dict) else None
        expected = f"line {district.bad_line}: block_path"
        steps.append(
            {
                "phase": "bad row",
                "kind": "households",
                "status": status,
                "seconds": seconds,
                "reply": {k: body.get(k) for k in ("status", "detail")},
                "peak_rss_mib": peaks,
            }
        )
        print(
            f"  bad row   households  {status} {seconds:8.2f} s  blocks {peaks['blocks']:6.0f} MiB"
            f"  gateway {peaks['gateway']:5.0f} MiB",
            flush=True,
        )
        expect(status == 400 and field == expected, f"bad file: HTTP {status}, first error {field!r}")
        expect(after == in_db["households"], f"bad file: households {in_db['households']} -> {after}")
        for kind, n in in_db.items():
            expect(
                n == district.rows[kind], f"{kind}: {n} in the database, {district.rows[kind]} in the file"
            )
    return {"steps": steps, "in_db": in_db, "failures": failures}


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    print(f"generating {args.blocks} blocks and {args.households:,} households into {folder} ...", flush=True)
    (folder / "files").mkdir()
    district = generate(folder / "files", args.blocks, args.households, args.seed)
    files = {FILE_NAMES[k]: district.path(k).stat().st_size for k in ORDER}
    password = secrets.token_urlsafe(16)
    pg_dbs: list[str] = []
    identity = identity_env()  # cheap hashing: one login, not measured
    with running_stack(
        folder, args.backend, admin_password=password, service_env={"identity": identity}, databases=pg_dbs
    ) as stack:
        pids = {proc.name: proc.popen.pid for proc in stack.procs if proc.name in WATCHED}
        if args.backend == "postgres":
            blocks_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_dbs[1]}"
        else:
            blocks_url = f"sqlite+aiosqlite:///{folder}/blocks.db"
        token = asyncio.run(admin_token(stack.gateway_url, password))
        with PeakSampler(pids) as sampler:
            idle = sampler.rss_mib()
            print(f"idle RSS: blocks {idle['blocks']:.0f} MiB, gateway {idle['gateway']:.0f} MiB", flush=True)
            results = asyncio.run(run_uploads(stack.gateway_url, token, district, sampler, blocks_url))
        hwm = {name: vm_hwm_mib(pid) for name, pid in pids.items()}
    failures = results["failures"]
    if hwm["blocks"] is not None and hwm["blocks"] >= args.limit_mib:
        failures.append(
            f"blocks peaked at {hwm['blocks']:.0f} MiB (VmHWM), the bound is {args.limit_mib} MiB"
        )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backend": args.backend,
        "machine": machine_info(),
        "seed": args.seed,
        "files_bytes": files,
        "rows": district.rows,
        "idle_rss_mib": idle,
        "vm_hwm_mib": hwm,
        "limit_mib": args.limit_mib,
        **results,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend(parser)
    parser.add_argument("--blocks", type=int, default=700)
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit-mib", type=float, default=300.0, help="bound on the blocks process's peak")
    add_json(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with temp_folder("gov-bench-import-stack-") as folder:
        try:
            report = run(args, folder)
        except StackFailed:
            return 2
        print()
        sizes = ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in report["files_bytes"].items())
        idle, hwm = report["idle_rss_mib"], report["vm_hwm_mib"]
        print(f"files: {sizes}")
        print(f"idle RSS     blocks {idle['blocks']:.0f} MiB, gateway {idle['gateway']:.0f} MiB")
        print(
            f"peak (VmHWM) blocks {hwm['blocks']:.0f} MiB, gateway {hwm['gateway']:.0f} MiB "
            f"(bound for blocks: {report['limit_mib']:.0f} MiB)"
        )
        for failure in report["failures"]:
            print(f"FAILED: {failure}")
        if not report["failures"]:
            print(
                "checks: all imported, every re-imported row unchanged, bad file rejected at its line, "
                "blocks under the bound: OK"
            )
        write_json(args.json, report)
        return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
