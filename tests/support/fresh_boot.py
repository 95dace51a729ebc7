"""Run a command as on a machine booted a moment ago: a Linux time namespace whose monotonic clock
starts near zero (new CI machines, new containers on a new node). Code that takes "no value yet"
for "a value made at monotonic 0" misbehaves there and nowhere else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time


def just_booted(seconds: float = 1.0) -> list[str] | None:
    """An argv prefix that runs a command (and its children) with CLOCK_MONOTONIC reading about
    `seconds`; None where the kernel or the user may not make a time namespace. Build it right
    before use: the offset is taken from the clock now."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    offset = max(0, int(time.monotonic() - seconds))
    # As root, a time namespace alone; otherwise inside a user namespace where we are root.
    for extra in ([], ["--user", "--map-root-user"]):
        prefix = [unshare, *extra, "--time", f"--monotonic=-{offset}", "--fork", "--"]
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", "import time; print(time.monotonic())"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and float(probe.stdout) < seconds + 60:
            return prefix
    return None
