"""Targeted notices (broadcasts): create, progress, list, cancel, read receipts; and the caller's
own preferences (channels per message kind, quiet hours).

Each route is one upstream call to the NotificationsService, declared with gateway.rest.routes; JSON
shapes live in gateway.notices_resources. Who may send to or read about a node is the service's
decision (the caller's token goes with every call): outside one's scope is a 403. Creating takes its
request id from the `Idempotency-Key` header, so a retried POST sends nothing twice; without one the
gateway makes a fresh id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.blocks_resources import NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of
from gateway.notices_resources import (
    NOTICE_ID_PATTERN,
    NewNotice,
    Notice,
    NoticePage,
    NoticeRecipientPage,
    Preferences,
    PreferencesBody,
    ReadFilterName,
)
from gateway.rest.resource import Resource
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import upstreams
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub

router = APIRouter(prefix="/api/v1/notifications", tags=["notices"])

NoticeId = Annotated[str, Path(max_length=64, pattern=NOTICE_ID_PATTERN, description="Id of the notice")]
RequiredNode = Annotated[
    str,
    Query(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=NODE_REF_PATTERN,
        description="Notices to this node or below (a node's ref, dots)",
        examples=["yuhu.wanlou"],
    ),
]


def _notifications(request: Request) -> NotificationsServiceStub:
    return upstreams(request).notifications


api = Endpoints(router, _notifications, prefix="/api/v1/notifications", messages=pb)

notices = Resource(api, "/notices", pb.Notice, ("notice_id", NoticeId), view=Notice, page=NoticePage)
notices.create(
    "Send a notice to every resident of a node (optionally households with a tag)",
    description=(
        "Leaders and dispatchers whose scope covers the node, or the block's own governor and "
        "assistants. The audience is resolved and told in batches in the background: follow "
        "`recipients_written` on the notice. A retry under the same `Idempotency-Key` returns the "
        "first notice and sends nothing again."
    ),
    body=NewNotice,
    idempotent=True,
)
notices.list("Notices to a node or below, newest first", params={"node": Param(RequiredNode, encode=path_of)})
notices.get("A notice with its progress and how many have read it")
notices.action(
    "POST", ":cancel", "cancel_notice", "Stop a notice's further batches (residents already told keep it)"
)
notices.action(
    "GET",
    "/recipients",
    "list_notice_recipients",
    "Read receipts: who has (or has not) read a notice",
    params={"read": Param(ReadFilterName | None, None, field="filter"), **PAGE},
    view=NoticeRecipientPage,
)

api.get(
    "/preferences",
    "get_preferences",
    rpc="GetPreferences",
    view=Preferences,
    summary="Your channels per message kind and your quiet hours",
)
api.put(
    "/preferences",
    "set_preferences",
    rpc="UpdatePreferences",
    view=Preferences,
    summary="Replace your channel choices and quiet hours",
    description=(
        "Non-urgent messages on SMS, e-mail and robots wait for the end of your quiet hours; urgent "
        "ones (overdue, escalation, safety) go at once. The inbox cannot be switched off (400)."
    ),
    body=PreferencesBody,
    message=lambda body: pb.UpdatePreferencesRequest(preferences=body.to_pb(pb.Preferences)),
)
