"""Request dispatch that tries only the routes a path can match.

FastAPI's router tries its routes in order, each with a regular expression, and keeps included
routers nested, asking each of them in turn (and again when it hands the request over). With the
gateway's ~150 routes that was 0.2-0.4 ms of CPU for a route late in the list, and about 0.8 ms
for a path no route matches, of the ~0.9 ms the gateway spends on a whole request (bench/README.md,
"Fourth pass"). A route can only match a path that begins with its literal part (what comes before
its first `{parameter}`), so the routes are indexed by those parts, segment by segment: a request
is handed to a router holding just the routes whose literal part its path begins with, in their
declared order, and FastAPI's own dispatch runs over those (first full match wins, a method
mismatch is 405, a trailing slash redirects, else 404), as it would over all of them.

The index is built at the first request, from the leaf routes of the app's router, and again when
routes have been added since. The app's router keeps its routes as declared: the OpenAPI document
does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter
from fastapi.routing import _IncludedRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    routes: list[tuple[int, BaseRoute]] = field(default_factory=list)
    router: APIRouter | None = None  # the routes here and above, in declared order


def leaf_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The routes of included routers, recursively, in the order the router tries them."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            out += leaf_routes(route.original_router.routes)
        else:
            out.append(route)
    return out


def literal_segments(route: BaseRoute) -> list[str] | None:
    """The path segments before the first parameter; None for a route of an unknown kind (it is then
    tried for every path)."""
    if not isinstance(route, Route | Mount):
        return None
    segments = route.path.split("/")[1:]
    literal = []
    for segment in segments:
        if "{" in segment:
            break
        literal.append(segment)
    if isinstance(route, Mount) and literal and literal[-1] == "":
        literal.pop()  # a Mount at "/x/" serves "/x/..."
    return literal


class RouteIndex:
    """ASGI app in place of a router's dispatch (`router.middleware_stack`); see the module doc."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.whole: ASGIApp = router.middleware_stack  # lifespan and websockets, as before
        self._root: _Node | None = None
        self._built_for = -1

    def _build(self) -> _Node:
        root = _Node()
        for order, route in enumerate(leaf_routes(self.router.routes)):
            node = root
            for segment in literal_segments(route) or []:
                node = node.children.setdefault(segment, _Node())
            node.routes.append((order, route))
        self._routers(root, [])
        self._built_for = len(self.router.routes)
        return root

    def _routers(self, node: _Node, above: list[tuple[int, BaseRoute]]) -> None:
        here = [*above, *node.routes]
        # A path with a trailing slash ends its walk here, above the "" child: that child's routes
        # are tried here too, so a slash redirect finds them.
        trailing = node.children[""].routes if "" in node.children else []
        node.router = APIRouter(
            routes=[route for _, route in sorted([*here, *trailing], key=lambda pair: pair[0])],
            redirect_slashes=self.router.redirect_slashes,
            default=self.router.default,
        )
        for child in node.children.values():
            self._routers(child, here)

    def router_for(self, path: str) -> APIRouter:
        """The router holding the routes `path` can match."""
        root = self._root
        if root is None or self._built_for != len(self.router.routes):
            root = self._root = self._build()
        node = root
        for segment in path.split("/")[1:]:
            child = node.children.get(segment)
            if child is None:
                break
            node = child
        assert node.router is not None
        return node.router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.whole(scope, receive, send)
            return
        # As the app's router would set it: url_for and the like see every route.
        scope.setdefault("router", self.router)
        await self.router_for(get_route_path(scope)).app(scope, receive, send)


def install(router: APIRouter) -> RouteIndex:
    """Dispatch `router`'s requests through an index. The router must have no middleware of its own
    (its dispatch is replaced whole)."""
    if getattr(router.middleware_stack, "__func__", None) is not type(router).app:
        raise TypeError("the router has middleware of its own; the index would bypass it")
    index = RouteIndex(router)
    router.middleware_stack = index
    return index
