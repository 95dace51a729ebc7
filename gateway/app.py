"""The FastAPI application."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import docs, open311, problems, route_index
from gateway.hygiene import HttpMiddleware, SecurityHeaders, limited_receive, raw_headers
from gateway.routes import admin, auth, blocks, meta, notices, notifications, points, tickets, users
from gateway.settings import GatewaySettings
from gateway.upstream import Upstreams
from govkit import heap, logs, metrics
from govkit.auth.revocations import RevocationFeed

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Probes every few seconds would drown the access log; their metrics are still counted.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz"})
access_log = logging.getLogger("gateway.access")


def _route_template(scope: Scope) -> str:
    """The route's template (`/api/v1/tickets/{ticket_id}`), never the raw path: ids in the path
    would make a series per ticket. Paths no route matched are one series."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class RequestContext(HttpMiddleware):
    """The request id (received, or made), the request's metrics and its access log line, and the
    body's size limit (hygiene.limited_receive): one layer, so one more frame and send wrapper
    per request are spared.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the rest of
    the app in a task group of its own and streams the response through memory channels, which cost
    the gateway about a tenth of its CPU per request. As before, the request is measured and logged
    when its response starts (an event stream is counted when it opens), or when the app fails before
    starting one (then as a 500, the answer ServerErrorMiddleware gives).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        super().__init__(app)
        self.max_body_bytes = max_body_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = Headers(scope=scope).get("x-request-id", "")
        # Unique, not secret: 128 random bits without a system call (random reseeds after a fork).
        request_id = incoming if _REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"
        # What `request.state.request_id` reads.
        scope.setdefault("state", {})["request_id"] = request_id
        logs.request_id.set(request_id)
        trace.get_current_span().set_attribute("gov.request_id", request_id)
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            method: str = scope["method"]
            metrics.observe_http(method, route, status, seconds)
            if route not in _QUIET_ROUTES:
                access_log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={"route": route, "status": status, "duration_ms": round(seconds * 1000, 1)},
                )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw_headers(message).append((b"x-request-id", request_id.encode()))
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, limited_receive(scope, receive, self.max_body_bytes), send_with_id)
        finally:
            if not observed:
                observe(500)


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
    """The security headers wrap the whole app, Starlette's error middleware included, so a 500
    carries them too. They wrap the app's call, not its middleware stack: OpenTelemetry's FastAPI
    instrumentation rebuilds that stack and expects Starlette's ServerErrorMiddleware outermost.
    Otherwise it logs an error and adds nothing, and FastAPI's own telemetry makes the server spans
    instead: without the exceptions, and without the URLs the gateway leaves out of traces (the SSE
    stream's, whose query may carry an access token)."""

    _secured: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._secured is None:
            self._secured = SecurityHeaders(super().__call__)
        await self._secured(scope, receive, send)


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
        heap.freeze_startup_heap()
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
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
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
    route_index.install(app.router)
    return app
