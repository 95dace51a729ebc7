"""Routes from declarations: one upstream call per route, its request message built from the URL, the
query and the body, its reply shown through a view.

    api = Endpoints(router, lambda request: upstreams(request).tickets)
    api.get("/units/{code}", "get_unit", rpc="GetUnit", view=Unit, summary="Get a handling unit",
            params={"code": UnitCode}, message=lambda code: pb.GetUnitRequest(name=f"units/{code}"))

The generated handler has the signature FastAPI reads (path and query parameters in the order
declared, the body, the caller), so the OpenAPI document is what a hand-written handler would give.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf.message import Message

from gateway.params import IdempotencyKey, PageSize, PageToken, body_limit
from gateway.rest.bodies import Body
from gateway.rest.views import View
from gateway.upstream import CallerDep, call

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """A parameter with a default (a query filter); a bare annotation is a required one."""

    annotation: object
    default: object = _EMPTY


# The page parameters every List route takes.
PAGE = {"page_size": Param(PageSize, 50), "page_token": Param(PageToken, "")}


class Endpoints:
    """Declares the routes of one upstream service on a router."""

    def __init__(self, router: APIRouter, stub: Callable[[Request], object], prefix: str = "/api/v1") -> None:
        self.router = router
        self.stub = stub
        self.prefix = prefix

    def get(self, path: str, name: str, **declaration: Any) -> None:
        self.route("GET", path, name, **declaration)

    def post(self, path: str, name: str, **declaration: Any) -> None:
        self.route("POST", path, name, **declaration)

    def patch(self, path: str, name: str, **declaration: Any) -> None:
        self.route("PATCH", path, name, **declaration)

    def put(self, path: str, name: str, **declaration: Any) -> None:
        self.route("PUT", path, name, **declaration)

    def delete(self, path: str, name: str, **declaration: Any) -> None:
        self.route("DELETE", path, name, view=None, status_code=204, **declaration)

    def route(
        self,
        method: str,
        path: str,
        name: str,
        *,
        rpc: str,
        message: Callable[..., Message],
        view: type[View] | None,
        summary: str,
        params: Mapping[str, object] | None = None,
        body: type[Body] | None = None,
        idempotent: bool = False,
        status_code: int | None = None,
        description: str | None = None,
        location: Callable[[Any, Mapping[str, Any]], str] | None = None,
        reply: Callable[[Any], Message] | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        """`message` gets the declared params (and `body`, and `idempotency_key`) by name; `location`
        gets the result and those params; `reply` picks the message to show from the reply."""
        stub, prefix = self.stub, self.prefix

        async def endpoint(request: Request, caller: Any, **values: Any) -> Any:
            reply_message = await call(request, getattr(stub(request), rpc), message(**values), caller)
            if view is None:
                return Response(status_code=204)
            result = view.of(reply(reply_message) if reply is not None else reply_message)
            headers = {"Location": prefix + location(result, values)} if location is not None else None
            # `of` has built and validated the view; answering with its JSON directly spares FastAPI
            # validating the same model a second time against response_model (which stays declared
            # for the OpenAPI document).
            return Response(
                result.model_dump_json(),
                status_code=status_code or 200,
                headers=headers,
                media_type="application/json",
            )

        endpoint.__name__ = endpoint.__qualname__ = name
        endpoint.__signature__ = _signature(params or {}, body, idempotent)  # type: ignore[attr-defined]
        if max_body_bytes is not None:
            body_limit(max_body_bytes)(endpoint)
        self.router.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=name,
            response_model=view,
            status_code=status_code,
            summary=summary,
            description=description or "",
        )


def _signature(params: Mapping[str, object], body: type[Body] | None, idempotent: bool) -> inspect.Signature:
    def keyword(name: str, annotation: object, default: object = _EMPTY) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("caller", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=CallerDep),
    ]
    for name, spec in params.items():
        if isinstance(spec, Param):
            parameters.append(keyword(name, spec.annotation, spec.default))
        else:
            parameters.append(keyword(name, spec))
    if body is not None:
        parameters.append(keyword("body", body))
    if idempotent:
        parameters.append(keyword("idempotency_key", IdempotencyKey, None))
    return inspect.Signature(parameters)
