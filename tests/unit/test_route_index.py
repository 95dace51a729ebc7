"""gateway.route_index: the indexed dispatch picks what FastAPI's own dispatch over every route
picks, for every route of the real app, and answers unknown paths, wrong methods and trailing
slashes the same way."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, Mount, Route

from gateway import route_index
from gateway.app import create_app
from gateway.settings import GatewaySettings


def _app(indexed: bool) -> FastAPI:
    app = create_app(GatewaySettings())
    if not indexed:  # FastAPI's own dispatch over every route
        app.router.middleware_stack = app.router.app
    return app


def _scope(method: str, path: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


def _first_full_match(routes: list[BaseRoute], scope: dict[str, object]) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return route
    return None


def _example_path(route: Route | Mount) -> str:
    """A path the route matches: each parameter filled with a value of its kind."""

    def value(found: re.Match[str]) -> str:
        kind = found.group(2) or "str"
        return {"path": "a/b", "int": "7", "float": "1.5"}.get(kind, "x1")

    path = re.sub(r"{(\w+)(?::(\w+))?}", value, route.path)
    return path + "/x" if isinstance(route, Mount) else path


def _cases() -> list[tuple[str, str]]:
    app = _app(indexed=True)
    cases = []
    for route in route_index.leaf_routes(app.router.routes):
        assert isinstance(route, Route | Mount), route
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            cases.append((method, _example_path(route)))
    return cases


CASES = _cases()


def test_every_route_of_the_app_is_covered() -> None:
    assert len(CASES) > 100
    assert ("GET", "/api/v1/tickets/x1") in CASES


@pytest.mark.parametrize(("method", "path"), CASES)
def test_the_index_picks_the_route_full_dispatch_picks(method: str, path: str) -> None:
    app = _app(indexed=True)
    index = app.router.middleware_stack
    assert isinstance(index, route_index.RouteIndex)
    everything = route_index.leaf_routes(app.router.routes)
    scope = _scope(method, path)
    expected = _first_full_match(everything, scope)
    assert expected is not None, f"{method} {path} matches no route"
    assert _first_full_match(index.router_for(path).routes, scope) is expected


@pytest.fixture
async def clients() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    def client(app: FastAPI) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")

    async with client(_app(indexed=True)) as indexed, client(_app(indexed=False)) as whole:
        yield indexed, whole


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing/here"),  # 404
        ("GET", "/api/v1/no-such-thing"),
        ("GET", "/api/v1/tickets/x1/no-such-thing"),
        ("DELETE", "/api/v1/me"),  # 405
        ("PUT", "/api/v1/tickets"),
        ("GET", "/api/v1/me/"),  # a trailing slash: redirected (or not) the same way
        ("GET", "/api/v1/tickets/"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/assets/nothing.js"),
        ("GET", "/open311/v2/services.json"),
        ("GET", "/api/v1/me"),  # 401 without a token
    ],
)
async def test_answers_are_the_same_as_full_dispatch(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], method: str, path: str
) -> None:
    indexed, whole = clients
    got, expected = await indexed.request(method, path), await whole.request(method, path)
    assert got.status_code == expected.status_code, got.text
    assert got.headers.get("location") == expected.headers.get("location")
    assert got.headers.get("allow") == expected.headers.get("allow")
    if expected.headers.get("content-type", "").startswith("application/problem+json"):
        drop = {"request_id"}
        assert {k: v for k, v in got.json().items() if k not in drop} == {
            k: v for k, v in expected.json().items() if k not in drop
        }


async def test_routes_added_after_the_first_request_are_served() -> None:
    app = _app(indexed=True)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/probe/late")).status_code == 404

        @app.get("/probe/late")
        async def late() -> dict[str, bool]:
            return {"late": True}

        reply = await client.get("/probe/late")
        assert reply.status_code == 200 and reply.json() == {"late": True}


def test_a_router_with_middleware_of_its_own_is_refused() -> None:
    from fastapi import APIRouter
    from starlette.middleware.gzip import GZipMiddleware

    router = APIRouter()
    router.middleware_stack = GZipMiddleware(router.middleware_stack)  # as Router(middleware=...) does
    with pytest.raises(TypeError, match="middleware"):
        route_index.install(router)
