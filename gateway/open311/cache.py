"""Small in-process caches (tokens, category and unit names), each entry with its own lifetime."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi import Request

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires <= self._clock():
            del self._entries[key]
            return None
        return value

    def put(self, key: str, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def app_cache(request: Request, name: str, max_entries: int) -> TtlCache[V]:
    """The application's cache of that name, made on first use (it lives as long as the app)."""
    caches: dict[str, TtlCache[V]] | None = getattr(request.app.state, "open311_caches", None)
    if caches is None:
        caches = request.app.state.open311_caches = {}
    if name not in caches:
        caches[name] = TtlCache(max_entries)
    return caches[name]
