"""RFC 9457 problem details for every error, with gRPC status codes mapped to HTTP."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

# (HTTP status, problem slug). FAILED_PRECONDITION is 409: the request is fine, the state forbids it.
GRPC_TO_HTTP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid-argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "out-of-range"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission-denied"),
    grpc.StatusCode.NOT_FOUND: (404, "not-found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already-exists"),
    grpc.StatusCode.ABORTED: (409, "aborted"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed-precondition"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource-exhausted"),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not-implemented"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline-exceeded"),
}

# The only request_id error that reaches the gateway (it checks the header's length itself).
IDEMPOTENCY_KEY_FIELD = "request_id"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


def from_rpc_error(exc: grpc.aio.AioRpcError) -> Problem:
    status, slug = GRPC_TO_HTTP.get(exc.code(), (500, "internal"))
    detail = exc.details() or exc.code().name
    headers: dict[str, str] = {}
    errors: list[dict[str, str]] | None = None
    for key, value in exc.trailing_metadata() or ():
        if key == "retry-after":
            headers["Retry-After"] = str(value)
        elif key == "grpc-status-details-bin" and isinstance(value, bytes):
            errors = _field_violations(value) or None
    if status == 400 and errors and [e["field"] for e in errors] == [IDEMPOTENCY_KEY_FIELD]:
        # The key was used for a different request (govkit.idempotency): the body is well-formed
        # but cannot be processed under this key.
        status, slug = 422, "idempotency-key-reused"
        errors = [{"field": "Idempotency-Key", "message": e["message"]} for e in errors]
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        # Upstream internals are not the client's business; the request id ties it to the logs.
        log.error("upstream error", extra={"grpc_code": exc.code().name, "detail": exc.details()})
        detail = "the service is unavailable, try again" if status in (503, 504) else "internal error"
    return Problem(status, detail, slug=slug, errors=errors, headers=headers)


def _field_violations(raw: bytes) -> list[dict[str, str]]:
    status = status_pb2.Status()
    status.ParseFromString(raw)
    out: list[dict[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.extend({"field": v.field, "message": v.description} for v in bad.field_violations)
    return out


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{problem.slug}",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    if problem.errors:
        body["errors"] = problem.errors
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _rpc(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return problem_response(request, from_rpc_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(
            request, Problem(422, f"invalid request: {fields}", slug="validation-failed", errors=errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            request, Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(request, Problem(500, "internal error", slug="internal"))
