"""Categories and unit names a page of service requests refers to, fetched once and cached a while."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import grpc
from fastapi import Request

from gateway.open311.cache import TtlCache, app_cache
from gateway.upstream import upstreams
from gov.tickets.v1 import tickets_pb2 as pb

R = TypeVar("R")
CATEGORY_TTL_SECONDS = 300.0
UNIT_TTL_SECONDS = 600.0
CACHE_SIZE = 2000
# Lookups that fail this way leave the field empty rather than failing the page.
_MISSING = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


class Invoker(Protocol):
    async def call(self, method: Callable[..., Awaitable[R]], message: Any) -> R: ...


async def category(request: Request, invoker: Invoker, code: str) -> pb.Category | None:
    cache: TtlCache[pb.Category] = app_cache(request, "open311_categories", CACHE_SIZE)
    found = cache.get(code)
    if found is None:
        try:
            fetched = await invoker.call(
                upstreams(request).tickets.GetCategory, pb.GetCategoryRequest(name=f"categories/{code}")
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _MISSING:
                return None
            raise
        cache.put(code, fetched, CATEGORY_TTL_SECONDS)
        found = fetched
    return found


async def unit_name(request: Request, invoker: Invoker, name: str) -> str | None:
    cache: TtlCache[str] = app_cache(request, "open311_units", CACHE_SIZE)
    found = cache.get(name)
    if found is None:
        try:
            unit = await invoker.call(upstreams(request).tickets.GetUnit, pb.GetUnitRequest(name=name))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _MISSING:
                return None
            raise
        found = unit.display_name or unit.code
        cache.put(name, found, UNIT_TTL_SECONDS)
    return found


async def categories(request: Request, invoker: Invoker, codes: Iterable[str]) -> dict[str, pb.Category]:
    wanted = sorted(set(codes))
    found = await asyncio.gather(*(category(request, invoker, c) for c in wanted))
    return {c: f for c, f in zip(wanted, found, strict=True) if f is not None}


async def unit_names(request: Request, invoker: Invoker, names: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(n for n in names if n))
    found = await asyncio.gather(*(unit_name(request, invoker, n) for n in wanted))
    return {n: f for n, f in zip(wanted, found, strict=True) if f is not None}
