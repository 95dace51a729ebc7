"""HTTP hygiene as plain ASGI middleware: response headers on every answer, a size limit on bodies."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import params

# What a JSON API answers with: nothing to run, render or frame.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# As ASGI holds them (lower-case names, bytes): appended to the response's own, no header object
# built per response.
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_ALWAYS_NAMES = frozenset(name for name, _ in _ALWAYS)
_API_POLICY = (b"content-security-policy", API_POLICY.encode())
_NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


def raw_headers(message: Message) -> list[tuple[bytes, bytes]]:
    """A response start's headers as the list ASGI servers read, to append to in place."""
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers or ())
    return headers


class HttpMiddleware:
    """Plain ASGI middleware acting on HTTP requests only; anything else (lifespan) passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    """nosniff, no framing and a locked-down CSP on every response; `no-store` unless a route says
    otherwise. Almost every answer carries personal data or tokens (RFC 6749 §5.1 also wants
    `Pragma: no-cache` on tokens), so caching is what a route opts into (the JWKS, the docs' files),
    never what it has to remember to opt out of. A route's own CSP (the docs page's) is kept."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = raw_headers(message)
                names = {name.lower() for name, _ in headers}
                if names & _ALWAYS_NAMES:  # ours replace a route's own
                    headers[:] = [h for h in headers if h[0].lower() not in _ALWAYS_NAMES]
                headers.extend(_ALWAYS)
                if b"content-security-policy" not in names:
                    headers.append(_API_POLICY)
                if b"cache-control" not in names:
                    headers.extend(_NO_STORE)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ContentTooLarge(HTTPException):
    """An HTTPException, so FastAPI passes it through its body parsing to the problem handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this route takes ({limit} bytes)")


def limited_receive(scope: Scope, receive: Receive, default: int) -> Receive:
    """`receive`, raising ContentTooLarge (413) once a body is larger than its route takes, before
    anything of it is parsed.

    The limit is looked up when the route first reads its body (routing has put the route in the
    scope by then): `params.body_limit` on the endpoint, else `default`. A Content-Length over it
    is refused without reading a byte; a chunked body is counted as it arrives.
    """
    declared = Headers(scope=scope).get("content-length", "")
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        limit = params.body_limit_of(getattr(scope.get("route"), "endpoint", None), default)
        if declared.isdigit() and int(declared) > limit:
            raise ContentTooLarge(limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise ContentTooLarge(limit)
        return message

    return receive_within_limit
