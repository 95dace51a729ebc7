"""Waiting for what another process does in its own time (an event consumed, a batch sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], within: float = 30, what: str = "", every: float = 0.1
) -> T:
    """The first truthy answer of `check`, asked every `every` seconds; fails after `within`."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(every)
