"""Routes from declarations: one upstream call per route, its request message built from the URL, the
query and the body, its reply shown through a view.

    api = Endpoints(router, lambda request: upstreams(request).tickets)
    api.get("/units/{code}", "get_unit", rpc="GetUnit", view=Unit, summary="Get a handling unit",
            params={"code": UnitCode}, message=lambda code: pb.GetUnitRequest(name=f"units/{code}"))

The generated handler has the signature FastAPI reads (path and query parameters in the order
declared, the body, the caller), so the OpenAPI document is what a hand-written handler would give.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.params import IdempotencyKey, PageSize, PageToken, body_limit
from gateway.rest.bodies import Body, encode, timestamp
from gateway.rest.fields import fields_of
from gateway.rest.views import View
from gateway.upstream import CallerDep, call

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """A parameter with a default (a query filter); a bare annotation is a required one, and so is a
    Param without a default. `field` and `encode` say where a declared resource's request takes it
    (gateway.rest.resource): the same-named field, as it is, unless they say otherwise."""

    annotation: object
    default: object = _EMPTY
    field: str | None = None
    encode: Callable[[Any], object] | None = None


# The page parameters every List route takes.
PAGE = {"page_size": Param(PageSize, 50), "page_token": Param(PageToken, "")}


def fill(message: Message, values: Mapping[str, Any], params: Mapping[str, object]) -> None:
    """Writes each declared parameter's value into its request field (a `Param`'s `field`, else the
    same-named one; enums as their numbers, times as Timestamps); None leaves the field unset."""
    fields = fields_of(message)
    for name, spec in params.items():
        value, target = values[name], name
        if isinstance(spec, Param):
            target = spec.field or name
            if spec.encode is not None:
                value = spec.encode(value)
        if value is None:
            continue
        fd = fields[target]
        if fd.type == FieldDescriptor.TYPE_MESSAGE and isinstance(value, dt.datetime):
            getattr(message, target).CopyFrom(timestamp(value, name))
        else:
            setattr(message, target, encode(fd, value, None, name))


class Endpoints:
    """Declares the routes of one upstream service on a router. With the service's `messages` module a
    route may leave out `message`: its `{rpc}Request` is filled from the declared parameters."""

    def __init__(
        self,
        router: APIRouter,
        stub: Callable[[Request], object],
        prefix: str = "/api/v1",
        messages: ModuleType | None = None,
    ) -> None:
        self.router = router
        self.stub = stub
        self.prefix = prefix
        self.messages = messages

    def request(self, rpc: str, **fields: Any) -> Message:
        """A new `{rpc}Request` of the service's messages module."""
        request_type: type[Message] = getattr(self.messages, f"{rpc}Request")
        return request_type(**fields)

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
        view: type[View] | None,
        summary: str,
        message: Callable[..., Message] | None = None,
        params: Mapping[str, object] | None = None,
        body: type[Body] | None = None,
        idempotent: bool = False,
        status_code: int | None = None,
        description: str | None = None,
        location: Callable[[Any, Mapping[str, Any]], str] | None = None,
        reply: Callable[[Any], Message] | None = None,
        max_body_bytes: int | None = None,
        with_caller: bool = False,
        tags: list[str | Enum] | None = None,
    ) -> None:
        """`message` gets the declared params (and `body`, and `idempotency_key`, and with `with_caller`
        the `caller`) by name; `location` gets the result and those params; `reply` picks the message
        to show from the reply."""
        stub, prefix = self.stub, self.prefix
        if message is None:
            if body is not None:
                raise TypeError(f"{name}: a route with a body declares its message")
            message = self._filled(rpc, params or {})
        build = message

        async def endpoint(request: Request, caller: Any, **values: Any) -> Any:
            request_message = build(**values, caller=caller) if with_caller else build(**values)
            reply_message = await call(request, getattr(stub(request), rpc), request_message, caller)
            if view is None:
                return Response(status_code=204)
            shown = reply(reply_message) if reply is not None else reply_message
            # The view's JSON is written directly (response_model stays declared for the OpenAPI
            # document): FastAPI would validate the same model a second time. Only a Location needs
            # the view itself; the rest skip building it (View.json_of).
            if location is None:
                content, headers = view.json_of(shown), None
            else:
                result = view.of(shown)
                content, headers = (
                    result.model_dump_json().encode(),
                    {"Location": prefix + location(result, values)},
                )
            return Response(
                content, status_code=status_code or 200, headers=headers, media_type="application/json"
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
            tags=tags,
        )

    def _filled(self, rpc: str, params: Mapping[str, object]) -> Callable[..., Message]:
        def message(**values: Any) -> Message:
            request = self.request(rpc)
            fill(request, values, params)
            return request

        return message


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
