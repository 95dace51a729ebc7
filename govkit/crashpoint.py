"""Named points where a test can make the process die abruptly.

Set GOV_CRASHPOINT=<name> and the process calls os._exit() when it reaches that point:
no cleanup, no flush, exactly like a kill -9 at that line. Used by the crash tests to
prove that the outbox and the consumers lose and duplicate nothing.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 86
_armed = os.environ.get("GOV_CRASHPOINT", "")


def crashpoint(name: str) -> None:
    if _armed and _armed == name:
        os._exit(CRASH_EXIT_CODE)
