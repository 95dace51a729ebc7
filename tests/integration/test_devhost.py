"""`make run` as a new user meets it: `python -m govkit.devrun run` in its default mode, every service
and the gateway in one process (govkit.devhost), on a data folder and ports of its own. A resident
of the demo logs in, reads who they are and reports a ticket; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from govkit.devstack import REPO, SERVICES, free_port
from tests.conftest import IDENTITY_ENV, STACK_ENV
from tests.support.databases import Databases

# The whole demo is seeded first, as `make run` does: minutes on a loaded machine.
START_SECONDS = 600
READY_LINE = "Press Ctrl-C to stop."


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def _drain(lines: queue.Queue[str]) -> str:
    return "".join(lines.get() for _ in range(lines.qsize()))


def _wait_for_banner(proc: subprocess.Popen[str], lines: queue.Queue[str], errors: queue.Queue[str]) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert proc.poll() is None, f"exited with {proc.returncode}:\n{''.join(seen)}{_drain(errors)}"
            continue
        seen.append(line)
        if line.strip() == READY_LINE:
            return "".join(seen)
    raise TimeoutError(f"no banner after {START_SECONDS}s:\n{''.join(seen)}")


def test_make_run_serves_from_one_process_and_stops_on_ctrl_c(databases: Databases, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GOV_DEVRUN_DATA": str(tmp_path / "data"),
        "GOV_HTTP_PORT": str(port),
        # The suite's cheap hashing and long-lived tokens: on a loaded machine the demo's seeding
        # outlasts a seeder's access token of the default 5 minutes otherwise.
        **{key: value for key, value in IDENTITY_ENV.items() if key.startswith(("GOV_ARGON2", "GOV_ACCESS"))},
        # The suite's small pools: test stacks share one PostgreSQL (100 connections).
        "GOV_DB_POOL_SIZE": STACK_ENV["GOV_DB_POOL_SIZE"],
        **{f"{service.upper()}_DATABASE_URL": databases.url(service) for service in SERVICES},
    }
    env.pop("GOV_DEVRUN_MODE", None)  # the default, as `make run`
    proc = subprocess.Popen(
        [sys.executable, "-m", "govkit.devrun", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    errors: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    threading.Thread(target=_lines, args=(proc.stderr, errors), daemon=True).start()
    try:
        banner = _wait_for_banner(proc, lines, errors)
        # One Python process serves: its only child left running is the NATS server.
        children = psutil.Process(proc.pid).children(recursive=True)
        assert [child.name() for child in children] == ["nats-server"], children
        for service in SERVICES:
            assert re.search(rf"{service} serving on 127\.0\.0\.1:\d+", banner), banner

        resident = re.search(r"resident\s+(\d{11})", banner)
        password = re.search(r"logs in by phone with the password (\S+)", banner)
        assert resident and password, banner
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as http:
            login = {"username": resident[1], "password": password[1]}
            token = http.post("/api/v1/auth/token", data=login)
            assert token.status_code == 200, token.text
            http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            me = http.get("/api/v1/me")
            assert me.status_code == 200, me.text
            scope = me.json()["user"]["scope"]
            category = next(  # one a report needs nothing more for
                c["code"]
                for c in http.get("/api/v1/categories").json()["items"]
                if not any(a.get("required") for a in c.get("attributes", []))
            )
            made = http.post(
                "/api/v1/tickets",
                json={"category": category, "title": "灯不亮", "location": {"address": "1栋"}, "node": scope},
            )
            assert made.status_code in (200, 201), made.text
            ticket = http.get(f"/api/v1/tickets/{made.json()['id']}")
            assert ticket.status_code == 200, ticket.text
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the foreground process
        status = proc.wait(60)
    time.sleep(0.5)  # the readers' last lines
    stderr = _drain(errors)
    assert status == 0, stderr
    assert "Traceback" not in stderr, stderr
    said = _drain(lines)
    assert said.rstrip().endswith("stopped."), said
    # Each component still writes a log of its own, each line named after it.
    logs = tmp_path / "data" / "logs"
    for component in (*SERVICES, "gateway"):
        first = (logs / f"{component}.log").read_text().splitlines()[0]
        assert f'"component": "{component}"' in first, first
