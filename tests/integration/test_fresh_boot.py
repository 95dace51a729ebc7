"""On a machine booted a moment ago (new CI machines, new containers on a new node) the monotonic
clock starts near zero. These run real processes in a Linux time namespace whose monotonic clock
reads about one second: `make run`'s whole stack and seeding, and the outbox relay."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from demo import tickets as wanlou
from gov.tickets.v1 import tickets_pb2 as pb
from govkit.devstack import REPO, Stack
from tests.support.databases import Databases
from tests.support.fresh_boot import just_booted

# Access tokens are reused for this long by the seeder; the bug showed only before it.
TOKEN_REUSE_SECONDS = 200


def _prefix() -> list[str]:
    prefix = just_booted(seconds=1.0)
    if prefix is None:
        pytest.skip("this kernel or user cannot make a time namespace (unshare --time)")
    return prefix


def _run(argv: list[str], timeout: float) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no report (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report: dict = json.loads(lines[-1])  # type: ignore[type-arg]
    assert done.returncode == 0, json.dumps(report, ensure_ascii=False, indent=1)[-6000:]
    return report


def test_make_runs_demo_seeding_right_after_boot(databases: Databases, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    urls = [databases.url(name) for name in ("identity", "blocks", "tickets")]
    data_dir = tmp_path_factory.mktemp("fresh-boot-stack")
    argv = [*_prefix(), sys.executable, "-m", "tests.support.demo_seed_stack", str(data_dir), *urls]
    report = _run(argv, timeout=900)

    first_blocks, first_tickets, again_blocks, again_tickets = report["runs"]
    # The case of the bug: the tickets seeder started before a token made "at 0" looked stale.
    assert first_tickets["monotonic_at_start"] < TOKEN_REUSE_SECONDS - 30, report["runs"]
    assert "households 3000, residents 8480; 244 staff accounts" in first_blocks["stdout"]
    assert "nodes 23, boundaries 22, buildings 144" in first_blocks["stdout"]
    assert "10 units, 25 categories, 40 demo tickets (40 new, 36 walked;" in first_tickets["stdout"]
    assert "demo.seed_tickets:" not in first_tickets["stderr"]  # no error, no ticket "left as it is"
    # Run again: nothing changes.
    assert again_blocks["stdout"] == first_blocks["stdout"]
    assert "(0 new, 0 walked; 0 units and 0 categories new)" in again_tickets["stdout"]
    expected = Counter(pb.TicketState.Name(t.target) for t in wanlou.TICKETS)
    assert report["ticket_states"] == dict(expected)


def test_housekeeping_prunes_on_its_first_round_after_boot(databases: Databases, stack: Stack) -> None:
    argv = [
        *_prefix(),
        sys.executable,
        "-m",
        "tests.support.outbox_prune",
        databases.url("outbox"),
        stack.nats_url,
    ]
    report = _run(argv, timeout=120)
    assert report["loop_time"] < 600  # the loop clock read as just after boot
    assert report["left"] == 0, "the event published two days ago was not pruned"
