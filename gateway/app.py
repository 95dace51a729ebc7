"""The FastAPI application."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry import trace
from starlette.types import ASGIApp

from gateway import docs, open311, problems
from gateway.hygiene import BodyLimit, SecurityHeaders
from gateway.routes import admin, auth, blocks, meta, notices, notifications, points, tickets, users
from gateway.settings import GatewaySettings
from gateway.upstream import Upstreams
from govkit import logs, metrics
from govkit.auth.revocations import RevocationFeed

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Probes every few seconds would drown the access log; their metrics are still counted.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz"})
access_log = logging.getLogger("gateway.access")


def _route_template(request: Request) -> str:
    """The route's template (`/api/v1/tickets/{ticket_id}`), never the raw path: ids in the path
    would make a series per ticket. Paths no route matched are one series."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


DESCRIPTION = """
REST API of the block-based community governance platform.

**Authentication**: press *Authorize* and log in with a phone number (or username) and password;
the access token is a short-lived JWT, verifiable with `/.well-known/jwks.json`.

**Errors** are RFC 9457 `application/problem+json` documents: `type`, `title`, `status`, `detail`,
`instance`, `request_id`, and `errors` (a list of `{field, message}`) for invalid input.

**Pagination**: list endpoints take `page_size` (1-200, default 50) and `page_token`, and return
`items` and `next_page_token` (empty on the last page).

**Scopes**: every account and role binding sits at a node of the region tree, named by its path
of codes (`yuhu/wanlou/taoyuan/b07`); a role at a node covers everything below it.

**Node paths in URLs** take one path segment, with dots instead of slashes (codes never contain
a dot): the block `yuhu/wanlou/taoyuan/b07` is `/api/v1/nodes/yuhu.wanlou.taoyuan.b07`. Responses
give a node's `path` (slashes) and its `ref` (dots, for URLs); JSON bodies accept either form.
"""


class GatewayApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside even Starlette's error middleware, so a 500 carries the security headers too.
        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstreams = Upstreams(settings)
        # Tokens identity revokes stop working here within moments (govkit/auth/revocations.py).
        feed = RevocationFeed(
            app.state.upstreams.verifier.revocations,
            settings.nats_url,
            "gov-gateway",
            ca_file=settings.tls_nats_ca_file,
        )
        feed.start()
        yield
        app.state.upstreams.shutdown.set()
        await feed.stop()
        await app.state.upstreams.close()

    app = GatewayApp(
        title="Community governance platform API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from a CDN; docs.install serves Swagger UI itself.
        docs_url=None,
        redoc_url=None,
        swagger_ui_parameters=docs.SWAGGER_UI_PARAMETERS,
    )
    problems.install(app)
    if settings.docs_enabled:
        docs.install(app)
    # Innermost: the limit is looked up when the route reads its body.
    app.add_middleware(BodyLimit, default=settings.max_body_bytes)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The request id (received, or made), the request's metrics and its access log line."""
        incoming = request.headers.get("x-request-id", "")
        request.state.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        logs.request_id.set(request.state.request_id)
        trace.get_current_span().set_attribute("gov.request_id", request.state.request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request.state.request_id
            return response
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(request)
            metrics.observe_http(request.method, route, status, seconds)
            if route not in _QUIET_ROUTES:
                access_log.info(
                    "%s %s %d",
                    request.method,
                    route,
                    status,
                    extra={"route": route, "status": status, "duration_ms": round(seconds * 1000, 1)},
                )

    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location", "Retry-After"],
            max_age=600,
        )
    for router in (
        meta.router,
        auth.router,
        users.router,
        admin.router,
        blocks.router,
        tickets.router,
        points.router,
        notifications.router,
        notices.router,
        open311.router,
    ):
        app.include_router(router)
    return app
