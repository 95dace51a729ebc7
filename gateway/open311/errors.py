"""Open311 errors: `[{"code", "description"}]` or `<errors><error>…`, never problem+json.

`Open311Route` is the route class of the Open311 router: it answers an unknown format suffix with
404 and turns everything its handlers raise (argument checks, FastAPI's validation, gRPC status
codes from the services, anything unexpected) into an Open311 error in the request's format.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import problems
from gateway.open311.formats import MEDIA_TYPES, negotiate, render_error
from gateway.open311.tracing import redact_api_key

log = logging.getLogger(__name__)


class Open311Error(Exception):
    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def invalid(field: str, message: str) -> Open311Error:
    return Open311Error(400, f"{field}: {message}")


# Fields the services name in google.rpc.BadRequest, as the Open311 arguments they came from.
# The longest matching prefix wins; `ticket.` is stripped first.
_FIELDS = {
    "category": "service_code",
    "location": "lat, long",  # with a point given: out of range or in no block
    "location.latitude": "lat",
    "location.longitude": "long",
    "location.has_point": "lat",
    "location.household": "address_id",
    "location.address": "address_string",
    "node": "jurisdiction_id",
    "contact": "phone",
    "contact.phone": "phone",
    "contact.display_name": "first_name",
    "title": "description",
    "description": "description",
    "media_uris": "media_url",
    "attributes": "attribute",
    "request_id": "Idempotency-Key",
    "name": "service_request_id",
    "state": "status",
    "start_time": "start_date",
    "end_time": "end_date",
}


def open311_field(field: str) -> str:
    name = field.removeprefix("ticket.")
    if name.startswith("attributes.") or name.startswith("attributes["):
        code = name.removeprefix("attributes").strip(".[]").split(".")[0].split("]")[0]
        return f"attribute[{code}]"
    best = ""
    for prefix in _FIELDS:
        if (name == prefix or name.startswith((prefix + ".", prefix + "["))) and len(prefix) > len(best):
            best = prefix
    return _FIELDS[best] if best else name


def from_rpc_error(exc: grpc.aio.AioRpcError) -> Open311Error:
    # problems.from_rpc_error reads the field violations and Retry-After and hides 5xx internals.
    problem = problems.from_rpc_error(exc)
    status = problem.status
    headers = {k: v for k, v in problem.headers.items() if k == "Retry-After"}
    description = problem.detail
    if status in (400, 422) and problem.errors:
        status = 400  # Open311 answers bad input, a reused Idempotency-Key too, with 400
        description = "; ".join(f"{open311_field(e['field'])}: {e['message']}" for e in problem.errors)
    elif exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
        # Open311 clients know 400, 403 and 404; a create the state refuses (an inactive service) is 400.
        status = 400
    elif status == 401:
        status, description = 403, "api_key: refused"
    return Open311Error(status, description, headers)


def _validation_description(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _answer(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
    redact_api_key(request)
    if "fmt" in request.path_params:
        suffix = request.path_params["fmt"]
    else:  # the catch-all route: the last segment's extension, if any
        last = request.url.path.rsplit("/", 1)[-1]
        suffix = last.rsplit(".", 1)[-1] if "." in last else None
    fmt = negotiate(suffix, request.headers.get("accept", ""))
    if "fmt" in request.path_params and suffix not in MEDIA_TYPES:
        return render_error(fmt, 404, f"unknown format {suffix!r}: use .json or .xml")
    try:
        return await call()
    except Open311Error as exc:
        return render_error(fmt, exc.status, exc.description, exc.headers)
    except RequestValidationError as exc:
        return render_error(fmt, 400, _validation_description(exc))
    except grpc.aio.AioRpcError as exc:
        error = from_rpc_error(exc)
        return render_error(fmt, error.status, error.description, error.headers)
    except StarletteHTTPException as exc:  # e.g. the gateway's body limit (413)
        return render_error(fmt, exc.status_code, str(exc.detail), dict(exc.headers or {}))
    except Exception:
        log.exception("unhandled error")
        return render_error(fmt, 500, "internal error")


class Open311Route(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def open311_handler(request: Request) -> Response:
            return await _answer(request, lambda: handler(request))

        return open311_handler
