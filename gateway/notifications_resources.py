"""JSON shapes of the notifications REST resources, declared over the protobuf messages (gateway.rest).

Inbox items, deliveries and endpoints are named by their id in URLs; a person is `users/{id}`, a unit
`units/{code}`, a block or other node `nodes/{path}` (slashes). Templates are named by kind, channel and
locale (`ticket.resolved`, `sms`, `zh-CN`). Enums are lower-case names without their prefix (`inbox`,
`dead`), times RFC 3339 in UTC. The SSE stream's `inbox_item` events carry an `InboxItem` as the inbox
list shows it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from gateway.rest import Body, Out, ProtoEnum, View, from_pb, proto_enums, to_pb
from gateway.rest.names import id_out
from gov.notifications.v1 import notifications_pb2 as pb

__all__ = ["from_pb", "to_pb"]

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Ids the service makes (inbox items, deliveries, endpoints)."""
KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$"
"""A message kind: `ticket.resolved`, `points.penalty`."""
LOCALE_PATTERN = r"^(zh-CN|en)$"
OWNER_PATTERN = (
    r"^(users/[A-Za-z0-9_-]{1,64}|units/[a-z0-9][a-z0-9_-]{0,39}|nodes/[a-z0-9][a-z0-9_./-]{0,400})$"
)
"""Whose endpoint: `users/{id}` (e-mail), `units/{code}` or `nodes/{path}` (group robots)."""
MAX_MARK = 500


def _owner(value: str) -> str:
    """`nodes/yuhu.wanlou` and `nodes/yuhu/wanlou` name the same node; the service takes slashes."""
    return "nodes/" + value.removeprefix("nodes/").replace(".", "/") if value.startswith("nodes/") else value


# ----------------------------------------------------------------------------- enums


class ChannelName(ProtoEnum, proto=pb.Channel): ...


class DeliveryStateName(ProtoEnum, proto=pb.DeliveryState): ...


PROTO_ENUMS = proto_enums(ChannelName, DeliveryStateName)


# ----------------------------------------------------------------------------- inbox


class InboxItem(
    View,
    message=pb.InboxItem,
    fields={
        "id": id_out("Id of the item"),
        "name": "Resource name, `users/{id}/inboxItems/{id}`",
        "sequence": "Increases with every item written: the stream's event id, what a client resumes from",
        "kind": "Message kind, e.g. `ticket.resolved`, `points.penalty`",
        "title": None,
        "body": None,
        "link": Out(description="Where the item leads (a ticket, a rating page)", nullable=True),
        "resource": Out(
            description="What the message is about (`tickets/{id}`, `awards/{id}`)",
            nullable=True,
        ),
        "urgent": None,
        "create_time": None,
        "read_time": "Null while unread",
    },
): ...


class InboxItemPage(View, item=InboxItem, source="items"): ...


class UnreadCount(View, message=pb.UnreadCount, fields={"unread": "Items not yet read"}): ...


class MarkedRead(
    View,
    message=pb.MarkInboxItemsReadResponse,
    fields={"marked": "Items that were unread and are now read", "unread": "Items still unread"},
): ...


ItemId = Annotated[
    str,
    StringConstraints(max_length=64, pattern=ID_PATTERN),
]


class MarkRead(Body):
    """Items to mark read: by id, or every item up to a sequence ("mark all read"), or both."""

    ids: Annotated[
        list[ItemId], Field(default_factory=list, max_length=MAX_MARK, description="Ids of your own items")
    ]
    up_to_sequence: Annotated[
        int, Field(ge=0, description="Also every item with a sequence up to this one; 0: none")
    ] = 0

    def message(self, me: str) -> pb.MarkInboxItemsReadRequest:
        return pb.MarkInboxItemsReadRequest(
            names=[f"{me}/inboxItems/{i}" for i in self.ids], up_to_sequence=self.up_to_sequence
        )


# ----------------------------------------------------------------------------- deliveries


class Delivery(
    View,
    message=pb.Delivery,
    fields={
        "id": id_out("Id of the delivery"),
        "name": "Resource name, `deliveries/{id}`",
        "recipient": "`users/{id}`, or for group robots `units/{code}` or `nodes/{path}`",
        "channel": None,
        "kind": None,
        "state": "`dead`: a dead letter, retried only by hand",
        "attempts": None,
        "last_error": Out(nullable=True),
        "event_id": "The event the message came from; with recipient and channel its dedupe key",
        "node": "Node of the event (slashes)",
        "create_time": None,
        "update_time": None,
        "next_attempt_time": None,
        "sent_time": None,
    },
): ...


class DeliveryPage(View, item=Delivery, source="deliveries"): ...


# ----------------------------------------------------------------------------- endpoints


class Endpoint(
    View,
    message=pb.Endpoint,
    fields={
        "id": id_out("Id of the endpoint"),
        "name": "Resource name, `endpoints/{id}`",
        "owner": "`units/{code}` or `nodes/{path}` (a group robot), `users/{id}` (e-mail)",
        "channel": None,
        "address": "The robot's URL or the e-mail address (the signing secret is never shown)",
        "create_time": None,
    },
): ...


class EndpointPage(View, item=Endpoint, source="endpoints"): ...


class NewEndpoint(Body):
    owner: Annotated[
        str,
        StringConstraints(max_length=420, pattern=OWNER_PATTERN),
        AfterValidator(_owner),
        Field(examples=["units/wanlou-rapid", "nodes/yuhu.wanlou.taoyuan.b07", "users/42"]),
    ]
    channel: Annotated[ChannelName, Field(description="`webhook` (a group robot) or `email`")]
    address: Annotated[
        str,
        StringConstraints(min_length=3, max_length=500),
        Field(examples=["https://robot.example.org/hook", "li.wei@example.org"]),
    ]
    secret: Annotated[
        str,
        StringConstraints(max_length=200),
        Field(description="A group robot's signing secret (write only); empty for e-mail"),
    ] = ""


# ----------------------------------------------------------------------------- templates


class Template(
    View,
    message=pb.Template,
    fields={
        "name": "Resource name, `templates/{kind}/{channel}/{locale}`",
        "kind": None,
        "channel": None,
        "locale": "`zh-CN` or `en`",
        "subject": "E-mail subject and inbox title; unused for SMS",
        "body": "Jinja2 text (sandboxed)",
        "customized": "False while the built-in text is in use",
        "update_time": None,
        "parameters": "The parameters a message of this kind offers its template",
    },
): ...


class TemplatePage(View, item=Template, source="templates"): ...


Subject = Annotated[str, StringConstraints(max_length=200)]
TemplateText = Annotated[str, StringConstraints(max_length=4000)]
ParamName = Annotated[str, StringConstraints(max_length=64)]
ParamValue = Annotated[str, StringConstraints(max_length=500)]


class TemplatePatch(Body):
    """The texts to change; a field left out keeps its current text."""

    subject: Subject | None = None
    body: Annotated[TemplateText, StringConstraints(min_length=1)] | None = None


class PreviewBody(Body):
    """Draft texts to render instead of the stored ones (both left out: the stored ones), and
    parameters (the kind's sample values fill the rest)."""

    subject: Subject = ""
    body: TemplateText = ""
    parameters: Annotated[
        dict[ParamName, ParamValue],
        Field(default_factory=dict, max_length=50, examples=[{"ticket_id": "T-1", "title": "Street light"}]),
    ]


class TemplatePreview(
    View,
    message=pb.PreviewTemplateResponse,
    fields={
        "subject": None,
        "body": None,
        "sms_parts": "SMS: the text as the carrier sends it (one part, or 67-character parts with a header)",
    },
): ...


def template_name(kind: str, channel: ChannelName, locale: str) -> str:
    return f"templates/{kind}/{channel.value}/{locale}"
