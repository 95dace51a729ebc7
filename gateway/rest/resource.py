"""A resource's standard methods (AIP Get, List, Create, Update, Delete) and its custom ones, declared
in a line each:

    indicators = Resource(api, "/indicators", pb.Indicator, ("indicator_id", IndicatorId),
                          view=Indicator, page=IndicatorPage)
    indicators.list("Indicators in force at a node", params={"node": Param(RequiredNode, encode=path_of)})
    indicators.create("Publish an indicator", body=NewIndicator)
    indicators.get("Get an indicator")
    indicators.update("Change an indicator", body=IndicatorPatch)
    indicators.action("POST", "/retire", "retire_indicator", "Retire an indicator")

What the AIP names say is not declared again: the route names (`list_indicators`, `get_indicator`),
the RPCs (`ListIndicators`, `GetIndicator`), their request messages, the resource name built from the
path (`indicators/{indicator_id}`, `exchangePoints/{id}/items/{id}` under a parent), the page
parameters, the body written into the resource field (`CreateIndicatorRequest.indicator`) or, for an
Update, the fields present and their mask, and a Create's Location. A query parameter fills the
same-named request field (enums as their numbers, times as Timestamps) unless its `Param` names
another `field` or an `encode`. Anything else is an override (`message=`, `rpc=`, `location=`, ...)
passed on to `Endpoints.route`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import Message

from gateway.params import request_id
from gateway.rest.bodies import Body
from gateway.rest.routes import PAGE, Endpoints, fill
from gateway.rest.views import View

Build = Callable[..., Message]


def snake(camel: str) -> str:
    """`ExchangePoint` -> `exchange_point`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def camel(snake_name: str) -> str:
    """`approve_award` -> `ApproveAward`."""
    return "".join(part.capitalize() for part in snake_name.split("_"))


def plural(word: str) -> str:
    """`Activity` -> `Activities`, `Award` -> `Awards` (the words this API uses)."""
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


class Resource:
    """A collection at `path` (below its parent's item path) of `message` resources keyed by `key`
    (the path parameter's name and annotation)."""

    def __init__(
        self,
        api: Endpoints,
        path: str,
        message: type[Message],
        key: tuple[str, object],
        *,
        view: type[View],
        page: type[View] | None = None,
        parent: Resource | None = None,
        plural_name: str | None = None,
        collection: str | None = None,
        id_field: str = "id",
        names: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> None:
        self.api, self.message, self.view, self.page, self.parent = api, message, view, page, parent
        self.camel = message.DESCRIPTOR.name
        self.camel_plural = plural_name or plural(self.camel)
        self.singular, self.plural = snake(self.camel), snake(self.camel_plural)
        self.key, self.id_field, self.names = key[0], id_field, names
        collection = collection or self.camel_plural[0].lower() + self.camel_plural[1:]
        above = parent.item_path if parent is not None else ""
        self.path: str = above + path
        self.item_path: str = f"{self.path}/{{{self.key}}}"
        self.path_params: dict[str, object] = dict(parent.item_params) if parent is not None else {}
        self.item_params: dict[str, object] = {**self.path_params, self.key: key[1]}
        self.name_template: str = (f"{parent.name_template}/" if parent is not None else "") + (
            f"{collection}/{{{self.key}}}"
        )

    def name_of(self, values: Mapping[str, Any]) -> str:
        """The resource name (`exchangePoints/a/items/b`) from the path parameters, unless `names`
        says how the service names it otherwise (a node by its bare path)."""
        return self.names(values) if self.names is not None else self.name_template.format(**values)

    def request(self, rpc: str, **fields: Any) -> Message:
        return self.api.request(rpc, **fields)

    # ------------------------------------------------------------------------- standard methods

    def list(self, summary: str, *, params: Mapping[str, object] | None = None, **more: Any) -> None:
        rpc = more.pop("rpc", f"List{self.camel_plural}")
        filters = {**(params or {}), **PAGE}

        def message(**values: Any) -> Message:
            request = self.request(rpc, **self._parent(values))
            fill(request, values, filters)
            return request

        self._route("GET", self.path, f"list_{self.plural}", rpc, summary, message, self.page, filters, more)

    def get(self, summary: str, *, params: Mapping[str, object] | None = None, **more: Any) -> None:
        rpc = more.pop("rpc", f"Get{self.camel}")
        extra = params or {}

        def message(**values: Any) -> Message:
            request = self.request(rpc, name=self.name_of(values))
            fill(request, values, extra)
            return request

        self._route(
            "GET", self.item_path, f"get_{self.singular}", rpc, summary, message, self.view, extra, more
        )

    def create(self, summary: str, *, body: type[Body], idempotent: bool = False, **more: Any) -> None:
        rpc = more.pop("rpc", f"Create{self.camel}")

        def message(**values: Any) -> Message:
            request = self.request(rpc, **self._parent(values))
            getattr(request, self.singular).CopyFrom(values["body"].to_pb(self.message))
            if idempotent:
                setattr(request, "request_id", request_id(values["idempotency_key"]))  # noqa: B010  # any Create
            return request

        more.setdefault("location", self.location_of)
        more.update(status_code=201, body=body, idempotent=idempotent)
        name = f"create_{self.singular}"
        self._route("POST", self.path, name, rpc, summary, message, self.view, {}, more)

    def update(self, summary: str, *, body: type[Body], **more: Any) -> None:
        rpc = more.pop("rpc", f"Update{self.camel}")

        def message(**values: Any) -> Message:
            resource, mask = values["body"].patch(self.message, name=self.name_of(values))
            return self.request(rpc, **{self.singular: resource, "update_mask": mask})

        more["body"] = body
        name = f"update_{self.singular}"
        self._route("PATCH", self.item_path, name, rpc, summary, message, self.view, {}, more)

    def delete(self, summary: str, **more: Any) -> None:
        rpc = more.pop("rpc", f"Delete{self.camel}")
        more.update(status_code=204)
        name = f"delete_{self.singular}"
        self._route("DELETE", self.item_path, name, rpc, summary, self._named(rpc, {}), None, {}, more)

    # ------------------------------------------------------------------------- custom methods

    def action(
        self,
        method: str,
        suffix: str,
        name: str,
        summary: str,
        *,
        params: Mapping[str, object] | None = None,
        view: type[View] | None = None,
        name_field: str = "name",
        **more: Any,
    ) -> None:
        """A custom method on one resource (`POST /awards/{award_id}/approve` -> ApproveAward): the
        request carries the resource name (in `name_field`), the declared parameters and the body's
        fields, and the request id when idempotent; it answers with the resource's view unless
        another is named."""
        rpc = more.pop("rpc", camel(name))
        extra = params or {}
        path = self.item_path + suffix
        build = self._named(rpc, extra, name_field)
        self._route(method, path, name, rpc, summary, build, view or self.view, extra, more)

    # ------------------------------------------------------------------------- the parts

    def _named(self, rpc: str, extra: Mapping[str, object], name_field: str = "name") -> Build:
        def message(**values: Any) -> Message:
            request = self.request(rpc, **{name_field: self.name_of(values)})
            fill(request, values, extra)
            body = values.get("body")
            if isinstance(body, Body):
                body.fill(request, type(body).model_fields)
            if "idempotency_key" in values:
                setattr(request, "request_id", request_id(values["idempotency_key"]))  # noqa: B010
            return request

        return message

    def _parent(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {"parent": self.parent.name_of(values)} if self.parent is not None else {}

    def location_of(self, result: Any, values: Mapping[str, Any]) -> str:
        """Where a created resource is: the collection's path and the result's id."""
        return f"{self.path.format(**values)}/{getattr(result, self.id_field)}"

    def _route(
        self,
        method: str,
        path: str,
        name: str,
        rpc: str,
        summary: str,
        message: Build,
        view: type[View] | None,
        params: Mapping[str, object],
        more: dict[str, Any],
    ) -> None:
        params = {**(self.path_params if path == self.path else self.item_params), **params}
        body = more.get("body")
        if "message" not in more and body is not None and not issubclass(body, Body):
            # The standard request writes the body through Body.fill/to_pb/patch.
            raise TypeError(f"{name}: {body.__name__} is not a gateway.rest.Body; declare its message")
        more.setdefault("message", message)
        name = more.pop("name", name)
        self.api.route(method, path, name, rpc=rpc, view=view, summary=summary, params=params, **more)
