"""Notifications: the caller's own inbox (list, unread count, mark read, and the live SSE stream),
deliveries for staff and operators, message templates, and the endpoints robots and e-mail reach.

Each REST route is one upstream call to the NotificationsService, declared with gateway.rest.routes;
JSON shapes live in gateway.notifications_resources. Who may see or do what is the service's decision
(the caller's token goes with every call): an inbox is its owner's only; deliveries, templates and
endpoints need `notifications.manage` at the node concerned, else a 403.

The stream (`GET /api/v1/notifications/stream`) relays one WatchInbox call per connection (the service
fans new items out in-process: no database polling per connection) as Server-Sent Events.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from gateway import sse
from gateway.blocks_resources import NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of
from gateway.notifications_resources import (
    ID_PATTERN,
    KIND_PATTERN,
    LOCALE_PATTERN,
    OWNER_PATTERN,
    ChannelName,
    Delivery,
    DeliveryPage,
    DeliveryStateName,
    Endpoint,
    EndpointPage,
    InboxItem,
    InboxItemPage,
    MarkedRead,
    MarkRead,
    NewEndpoint,
    PreviewBody,
    Template,
    TemplatePage,
    TemplatePatch,
    TemplatePreview,
    UnreadCount,
    template_name,
)
from gateway.problems import Problem
from gateway.rest.resource import Resource
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import Caller, CallerDep, authenticated, call, oauth2_scheme, upstreams
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
PREFIX = "/api/v1/notifications"


def _notifications(request: Request) -> NotificationsServiceStub:
    return upstreams(request).notifications


api = Endpoints(router, _notifications, prefix=PREFIX, messages=pb)


def _me(caller: Caller) -> str:
    if not caller.principal.is_user:
        message = "an inbox belongs to a person; service accounts have none"
        raise Problem(403, message, slug="permission-denied")
    return caller.principal.subject


def _id_path(description: str) -> object:
    return Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description=description)]


DeliveryId = _id_path("Id of the delivery")
EndpointId = _id_path("Id of the endpoint")
Kind = Annotated[
    str, Path(max_length=100, pattern=KIND_PATTERN, description="Message kind", examples=["ticket.resolved"])
]
Locale = Annotated[str, Path(pattern=LOCALE_PATTERN, description="`zh-CN` or `en`")]
OWNER_HELP = "`units/{code}`, `nodes/{path}` or `users/{id}`"
TEMPLATE = {"kind": Kind, "channel": ChannelName, "locale": Locale}


# ----------------------------------------------------------------------------- inbox

api.get(
    "/inbox",
    "list_inbox_items",
    rpc="ListInboxItems",
    view=InboxItemPage,
    summary="Your own inbox, newest first",
    params={
        "unread": Param(
            Annotated[bool, Query(description="Only items not yet read")], False, field="unread_only"
        ),
        **PAGE,
    },
)
api.get(
    "/inbox/unread-count",
    "get_unread_count",
    rpc="GetUnreadCount",
    view=UnreadCount,
    summary="How many of your items are unread",
)


def _mark_read(body: MarkRead, caller: Caller) -> pb.MarkInboxItemsReadRequest:
    if not body.ids and not body.up_to_sequence:
        errors = [{"field": "ids", "message": "name items or give up_to_sequence"}]
        raise Problem(400, "ids: name items or give up_to_sequence", slug="invalid-argument", errors=errors)
    return body.message(_me(caller))


api.post(
    "/inbox/read",
    "mark_inbox_items_read",
    rpc="MarkInboxItemsRead",
    view=MarkedRead,
    summary="Mark your items read, by id or every item up to a sequence",
    description="Items already read keep their read time; an id not of your own inbox marks nothing.",
    body=MarkRead,
    with_caller=True,
    message=_mark_read,
)


# ----------------------------------------------------------------------------- the stream

STREAM_DESCRIPTION = """
Your new inbox items as they are written, as Server-Sent Events (`text/event-stream`):

    id: 42
    event: inbox_item
    data: {"id": "...", "sequence": 42, "kind": "ticket.resolved", ...}

`data` is an `InboxItem` exactly as the inbox list shows it; `id` is its `sequence`. While nothing
happens a comment line (`: keep-alive`) is written every few seconds (`GOV_SSE_HEARTBEAT_SECONDS`).

**Resuming**: send the last id received as the `Last-Event-ID` header (EventSource does this itself when
it reconnects) or, when it cannot be set, as `last_event_id`; the stream starts with every item after
it, in order, then goes on live. Without one it starts with items written from now on.

**Authentication**: the usual bearer token in `Authorization`. Browsers' EventSource cannot set headers,
so this route alone also takes the token as the `access_token` query parameter. The gateway never logs
query strings; keep such URLs out of your own logs too, and prefer the header where you can.

The stream ends when the gateway stops or the notifications service restarts; reconnect with
`Last-Event-ID` and nothing is missed.
"""

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=20,
        description="The last event id received: the stream resumes after it",
    ),
]


async def stream_caller(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    access_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="The bearer token, for EventSource clients that cannot set headers (this route only)",
        ),
    ] = None,
) -> Caller:
    return await authenticated(request, token or access_token)


def _sequence(value: str | None, field: str) -> int:
    if value is None or value == "":
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        message = "must be the id of an event this stream sent (a whole number)"
        errors = [{"field": field, "message": message}]
        raise Problem(400, f"{field}: {message}", slug="invalid-argument", errors=errors)
    return int(value)


def _inbox_event(event: pb.InboxEvent) -> bytes | None:
    if not event.HasField("item"):
        return None  # the service's heartbeat: the relay writes its own keep-alives
    item = event.item
    return sse.frame(id=item.sequence, event="inbox_item", data=InboxItem.json_of(item).decode())


@router.get(
    "/stream",
    name="stream_inbox",
    summary="Your new inbox items, live, as Server-Sent Events",
    description=STREAM_DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An event stream of `inbox_item` events (data: an `InboxItem`)",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string", "description": "SSE frames; each `data` an InboxItem"},
                    "example": 'id: 42\nevent: inbox_item\ndata: {"id": "01J...", "sequence": 42}\n\n',
                }
            },
        },
        400: {"description": "Last-Event-ID is not an event id"},
        401: {"description": "No valid bearer token"},
        403: {"description": "Service accounts have no inbox"},
    },
)
async def stream_inbox(
    request: Request,
    caller: Annotated[Caller, Depends(stream_caller)],
    last_event_id_header: LastEventId = None,
    last_event_id: Annotated[
        str | None, Query(max_length=20, description="`Last-Event-ID` for clients that cannot set headers")
    ] = None,
) -> StreamingResponse:
    _me(caller)
    if last_event_id_header is not None:
        after = _sequence(last_event_id_header, "Last-Event-ID")
    else:
        after = _sequence(last_event_id, "last_event_id")
    stub = _notifications(request)
    # One short call first, so a service that is down or refuses the caller is a problem+json answer
    # rather than a 200 stream that ends at once.
    await call(request, stub.GetUnreadCount, pb.GetUnreadCountRequest(), caller)
    metadata = (("x-request-id", request.state.request_id), ("authorization", f"Bearer {caller.token}"))
    # No deadline: the stream lives as long as the client keeps it open.
    watch = stub.WatchInbox(pb.WatchInboxRequest(after_sequence=after), metadata=metadata)
    ups = upstreams(request)
    body = sse.relay(
        watch,
        _inbox_event,
        heartbeat=ups.settings.sse_heartbeat_seconds,
        shutdown=ups.shutdown,
        route=f"{PREFIX}/stream",
    )
    return StreamingResponse(body, media_type="text/event-stream", headers=sse.HEADERS)


# ----------------------------------------------------------------------------- deliveries

NodeOrAll = Annotated[
    str,
    Query(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=rf"^\*$|{NODE_REF_PATTERN}",
        description="Deliveries of events at or below this node (a ref, dots); `*` for all (global staff)",
        examples=["yuhu.wanlou", "*"],
    ),
]
Recipient = Annotated[
    str,
    Query(
        max_length=420,
        pattern=rf"^$|{OWNER_PATTERN}",
        description="`users/{id}`, `units/{code}` or `nodes/{path}`",
    ),
]

deliveries = Resource(
    api, "/deliveries", pb.Delivery, ("delivery_id", DeliveryId), view=Delivery, page=DeliveryPage
)
deliveries.list(
    "Delivery records of a node's events (staff and operators): by recipient, channel, state",
    description="`state=dead` lists the dead letters.",
    params={
        "node": Param(NodeOrAll, encode=lambda node: node if node == "*" else path_of(node)),
        "recipient": Param(Recipient, ""),
        "channel": Param(ChannelName | None, None),
        "state": Param(DeliveryStateName | None, None),
    },
)
deliveries.action(
    "POST",
    "/retry",
    "retry_delivery",
    "Send a failed or dead-lettered delivery again (attempts start over)",
    description="A delivery already sent is a 409.",
)


# ----------------------------------------------------------------------------- endpoints


def _node_owner(owner: str) -> str:
    return "nodes/" + path_of(owner.removeprefix("nodes/")) if owner.startswith("nodes/") else owner


endpoints = Resource(
    api, "/endpoints", pb.Endpoint, ("endpoint_id", EndpointId), view=Endpoint, page=EndpointPage
)
endpoints.create(
    "Register a group robot (a unit's or a block's) or a person's e-mail address",
    description="A retry under the same `Idempotency-Key` returns the first endpoint.",
    body=NewEndpoint,
    idempotent=True,
)
endpoints.list(
    "The endpoints of a unit, node or person",
    params={
        "owner": Param(
            Annotated[str, Query(max_length=420, pattern=OWNER_PATTERN, description=OWNER_HELP)],
            encode=_node_owner,
        )
    },
)
endpoints.delete("Remove an endpoint")


# ----------------------------------------------------------------------------- templates

api.get(
    "/templates",
    "list_templates",
    rpc="ListTemplates",
    view=TemplatePage,
    summary="Message templates (staff): built-in texts until edited",
    params={"kind": Param(Annotated[str, Query(max_length=100, pattern=rf"^$|{KIND_PATTERN}")], ""), **PAGE},
)
api.get(
    "/templates/{kind}/{channel}/{locale}",
    "get_template",
    rpc="GetTemplate",
    view=Template,
    summary="A message kind's text on a channel in a locale",
    params=TEMPLATE,
    message=lambda kind, channel, locale: pb.GetTemplateRequest(name=template_name(kind, channel, locale)),
)


@router.patch(
    "/templates/{kind}/{channel}/{locale}",
    name="update_template",
    response_model=Template,
    summary="Change a template's subject or body (operators); it must render with the kind's sample",
)
async def update_template(
    request: Request, kind: Kind, channel: ChannelName, locale: Locale, body: TemplatePatch, caller: CallerDep
) -> Template:
    if not body.model_fields_set:
        raise Problem(400, "name at least one field to change", slug="invalid-argument")
    name = template_name(kind, channel, locale)
    stub = _notifications(request)
    subject, text = body.subject, body.body
    if subject is None or text is None:
        # The service replaces both texts: a field left out keeps what is there now.
        current: pb.Template = await call(request, stub.GetTemplate, pb.GetTemplateRequest(name=name), caller)
        subject = current.subject if subject is None else subject
        text = current.body if text is None else text
    message = pb.UpdateTemplateRequest(template=pb.Template(name=name, subject=subject, body=text))
    return Template.of(await call(request, stub.UpdateTemplate, message, caller))


api.post(
    "/templates/{kind}/{channel}/{locale}/preview",
    "preview_template",
    rpc="PreviewTemplate",
    view=TemplatePreview,
    summary="Render a template (as stored, or a draft) with sample or given parameters",
    params=TEMPLATE,
    body=PreviewBody,
    message=lambda kind, channel, locale, body: pb.PreviewTemplateRequest(
        name=template_name(kind, channel, locale),
        subject=body.subject,
        body=body.body,
        parameters=body.parameters,
    ),
)
