"""The gateway's hygiene middleware in process: the real app, with a few routes added to probe it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel

from gateway.app import create_app
from gateway.params import body_limit
from gateway.settings import GatewaySettings

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    text: str


def probe_app(**settings: object) -> FastAPI:
    app = create_app(GatewaySettings(**settings))  # type: ignore[arg-type]

    @app.get("/probe/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/probe/own-headers")
    async def own_headers() -> Response:
        # A route's own framing rule and caching, in another case than ours.
        return Response(
            b"{}",
            media_type="application/json",
            headers={"X-Frame-Options": "SAMEORIGIN", "Cache-Control": "max-age=60"},
        )

    @app.post("/probe/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @app.post("/probe/raw")
    @body_limit(8 * 1024)
    async def raw(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=probe_app(max_body_bytes=2048), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


async def test_a_500_carries_the_security_headers_too(client: httpx.AsyncClient) -> None:
    reply = await client.get("/probe/boom")
    assert reply.status_code == 500 and reply.headers["content-type"] == PROBLEM
    assert reply.json()["detail"] == "internal error"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert reply.headers["cache-control"] == "no-store"


async def test_the_default_limit_and_a_route_of_its_own(client: httpx.AsyncClient) -> None:
    assert (await client.post("/probe/echo", json={"text": "x" * 1000})).status_code == 200
    too_big = await client.post("/probe/echo", json={"text": "x" * 3000})
    assert too_big.status_code == 413 and too_big.headers["content-type"] == PROBLEM
    assert too_big.json()["detail"] == "the request body is larger than this route takes (2048 bytes)"
    # The route that declared 8 KiB takes 6 KB, streamed, and refuses 9 KB.
    assert (await client.post("/probe/raw", content=b"x" * 6000)).json() == {"size": 6000}
    assert (await client.post("/probe/raw", content=b"x" * 9000)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    chunked = await client.post("/probe/raw", content=chunks())
    assert chunked.status_code == 413 and chunked.headers["content-type"] == PROBLEM


async def test_docs_off_by_the_setting() -> None:
    transport = httpx.ASGITransport(app=probe_app(docs_enabled=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        assert (await c.get("/docs")).status_code == 404
        assert (await c.get("/docs/assets/swagger-ui.css")).status_code == 404
        assert (await c.get("/openapi.json")).status_code == 200
    transport = httpx.ASGITransport(app=probe_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        assert (await c.get("/docs")).status_code == 200
        css = await c.get("/docs/assets/swagger-ui.css")
        assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=86400"


def test_the_settings_refuse_a_tiny_or_absurd_limit() -> None:
    for bad in (0, 10, 2**40):
        with pytest.raises(ValueError, match="max_body_bytes"):
            GatewaySettings(max_body_bytes=bad)  # type: ignore[arg-type]


async def test_open311_answers_the_body_limit_in_its_own_format(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/open311/v2/requests.json",
        content=b"description=" + b"x" * 4000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 413 and reply.headers["content-type"].startswith("application/json")
    assert reply.json() == [
        {"code": 413, "description": "the request body is larger than this route takes (2048 bytes)"}
    ]


async def test_tracing_instruments_the_app_and_a_500_keeps_its_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The FastAPI instrumentation needs Starlette's error middleware outermost in the stack it
    rebuilds; the security headers wrap the app around it, not inside that stack. (When they were
    inside, it logged an error and added nothing: no server span of its own, no exception on it.)"""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = probe_app()
    # As gateway/__main__.py instruments it.
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz,readyz")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        reply = await c.get("/probe/boom")
        echoed = await c.post("/probe/echo", json={"text": "x"})
        probed = await c.get("/healthz")
    assert "Skipping FastAPI instrumentation" not in caplog.text
    assert reply.status_code == 500 and reply.headers["content-type"] == PROBLEM
    for answer in (reply, echoed, probed):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert answer.headers["cache-control"] == "no-store"
    servers = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert [(s.name, s.instrumentation_scope.name if s.instrumentation_scope else "") for s in servers] == [
        ("GET /probe/boom", "opentelemetry.instrumentation.fastapi"),
        ("POST /probe/echo", "opentelemetry.instrumentation.fastapi"),
    ]  # and none for the excluded probe
    boom, echo = servers
    assert [event.name for event in boom.events] == ["exception"]  # recorded by the instrumentation
    assert boom.status.status_code.name == "ERROR" and echo.status.status_code.name == "UNSET"


async def test_fixed_headers_replace_a_routes_own_and_its_caching_stays(client: httpx.AsyncClient) -> None:
    reply = await client.get("/probe/own-headers")
    assert reply.status_code == 200
    assert reply.headers.get_list("x-frame-options") == ["DENY"]
    assert reply.headers.get_list("x-content-type-options") == ["nosniff"]
    assert reply.headers.get_list("cache-control") == ["max-age=60"]
    assert "pragma" not in reply.headers
    assert len(reply.headers.get_list("x-request-id")) == 1
    assert len(reply.headers.get_list("content-security-policy")) == 1
