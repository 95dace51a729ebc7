"""On a machine booted a moment ago (new CI machines, new containers on a new node) the monotonic
clock starts near zero. These run real processes in a Linux time namespace whose monotonic clock
reads about one second: `make run`'s whole stack and seeding, and the outbox relay."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from demo import points as demo_points
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
    urls = [databases.url(name) for name in ("identity", "blocks", "tickets", "points", "notifications")]
    data_dir = tmp_path_factory.mktemp("fresh-boot-stack")
    argv = [*_prefix(), sys.executable, "-m", "tests.support.demo_seed_stack", str(data_dir), *urls]
    report = _run(argv, timeout=900)

    runs = report["runs"]
    first_blocks, first_tickets, first_points, first_notices = runs[:4]
    again_blocks, again_tickets, again_points, again_notices = runs[4:]
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
    _assert_points_demo(report, first_points, again_points)
    # The notice reaches the community's demo residents once; a second run sends nothing new.
    assert "notice" in first_notices["stdout"] and "(new)" in first_notices["stdout"], first_notices
    assert "(existing)" in again_notices["stdout"] and "(0 newly linked)" in again_notices["stdout"], (
        again_notices
    )


def _assert_points_demo(report: dict, first: dict, again: dict) -> None:  # type: ignore[type-arg]
    """The points demo: its indicators in Chinese, a love bank per Wanlou community with items, the
    demo residents' awards and redemptions, a published red list, the bank with two tiers, and a
    ledger that verifies."""
    assert "demo.seed_points:" not in first["stderr"], first["stderr"]
    demo = demo_points.load()
    held = report["points"]
    assert held["indicators"] == len(demo.indicators) >= 45
    assert held["indicators_in_chinese"] == held["indicators"]
    communities = sorted(f"{demo_points.STREET}/{c.code}" for c in demo_points.PLAN.communities)
    assert held["exchange_points"] == communities
    assert held["items"] == dict.fromkeys(communities, len(demo.items))
    assert held["award_recipients"] >= len(communities) and held["awards"] > held["award_recipients"]
    assert held["award_kinds"] == ["INDICATOR_KIND_PENALTY", "INDICATOR_KIND_REWARD"]
    assert held["redemptions"] >= len(communities)
    assert {"fulfilled", "reserved"} <= set(held["redemption_states"])
    assert [kind for kind, _, published in held["rankings"] if published] == ["RANKING_KIND_RED"]
    assert held["credit_tiers"] == 2 == len(demo.tiers)
    assert "演示合作银行" in held["service_accounts"]
    # Every balance is the sum of its entries, and the ledger's own proof agrees.
    assert held["accounts"] >= held["award_recipients"] and held["balance_mismatches"] == []
    verified = report["points_verify"]
    assert verified["returncode"] == 0, verified
    assert f"verify: {held['accounts']} accounts, 0 problems" in verified["stdout"]
    # Run again: nothing new.
    assert again["stdout"].count("(0 new)") == 2, again["stdout"]


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
