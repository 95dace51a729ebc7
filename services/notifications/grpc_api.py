"""Thin gRPC adapter for the notifications service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc

from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1 import notifications_pb2_grpc
from govkit.auth.principal import current_principal
from services.notifications import convert
from services.notifications.deliveries import Deliveries
from services.notifications.endpoints import Endpoints
from services.notifications.hub import Overflow
from services.notifications.inbox import Heartbeat, Inbox
from services.notifications.notices import Notices, to_pb
from services.notifications.preferences import Preferences
from services.notifications.template_admin import Templates

SERVICE = "gov.notifications.v1.NotificationsService"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


@dataclass(eq=False)
class NotificationsServicer(notifications_pb2_grpc.NotificationsServiceServicer):
    inbox: Inbox
    deliveries: Deliveries
    endpoints: Endpoints
    templates: Templates
    notices: Notices
    preferences: Preferences

    async def ListInboxItems(
        self, request: pb.ListInboxItemsRequest, context: Context
    ) -> pb.ListInboxItemsResponse:
        rows, token = await self.inbox.list(
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            unread_only=request.unread_only,
        )
        return pb.ListInboxItemsResponse(items=[convert.inbox_item(r) for r in rows], next_page_token=token)

    async def GetUnreadCount(self, request: pb.GetUnreadCountRequest, context: Context) -> pb.UnreadCount:
        return pb.UnreadCount(unread=await self.inbox.unread(current_principal()))

    async def MarkInboxItemsRead(
        self, request: pb.MarkInboxItemsReadRequest, context: Context
    ) -> pb.MarkInboxItemsReadResponse:
        marked, unread = await self.inbox.mark_read(
            current_principal(), list(request.names), request.up_to_sequence
        )
        return pb.MarkInboxItemsReadResponse(marked=marked, unread=unread)

    async def WatchInbox(
        self, request: pb.WatchInboxRequest, context: Context
    ) -> AsyncIterator[pb.InboxEvent]:
        try:
            # aclosing: a cancelled stream leaves the hub at once, not when the generator is collected.
            async with contextlib.aclosing(
                self.inbox.watch(current_principal(), request.after_sequence)
            ) as events:
                async for event in events:
                    if isinstance(event, Heartbeat):
                        yield pb.InboxEvent(heartbeat=event.last_sequence)
                    else:
                        yield pb.InboxEvent(item=convert.inbox_item(event))
        except Overflow as exc:
            await context.abort(grpc.StatusCode.ABORTED, str(exc))

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Context
    ) -> pb.ListDeliveriesResponse:
        rows, token = await self.deliveries.list(
            current_principal(),
            node=request.node,
            recipient=request.recipient,
            channel=convert.channel_name(request.channel, "channel", optional=True),
            state=convert.state_name(request.state, "state"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListDeliveriesResponse(
            deliveries=[convert.delivery(r) for r in rows], next_page_token=token
        )

    async def RetryDelivery(self, request: pb.RetryDeliveryRequest, context: Context) -> pb.Delivery:
        return convert.delivery(await self.deliveries.retry(current_principal(), request.name))

    async def CreateEndpoint(self, request: pb.CreateEndpointRequest, context: Context) -> pb.Endpoint:
        return await self.endpoints.create(current_principal(), request)

    async def ListEndpoints(
        self, request: pb.ListEndpointsRequest, context: Context
    ) -> pb.ListEndpointsResponse:
        rows, token = await self.endpoints.list(
            current_principal(), request.owner, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListEndpointsResponse(endpoints=[convert.endpoint(r) for r in rows], next_page_token=token)

    async def DeleteEndpoint(self, request: pb.DeleteEndpointRequest, context: Context) -> pb.Endpoint:
        return convert.endpoint(await self.endpoints.delete(current_principal(), request.name))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: Context
    ) -> pb.ListTemplatesResponse:
        views, token = await self.templates.list(
            current_principal(), request.kind, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListTemplatesResponse(templates=[convert.template(v) for v in views], next_page_token=token)

    async def GetTemplate(self, request: pb.GetTemplateRequest, context: Context) -> pb.Template:
        return convert.template(await self.templates.get(current_principal(), request.name))

    async def UpdateTemplate(self, request: pb.UpdateTemplateRequest, context: Context) -> pb.Template:
        t = request.template
        return convert.template(await self.templates.update(current_principal(), t.name, t.subject, t.body))

    async def PreviewTemplate(
        self, request: pb.PreviewTemplateRequest, context: Context
    ) -> pb.PreviewTemplateResponse:
        out = await self.templates.preview(
            current_principal(), request.name, request.subject, request.body, dict(request.parameters)
        )
        return pb.PreviewTemplateResponse(subject=out.subject, body=out.body, sms_parts=out.sms_parts)

    async def CreateNotice(self, request: pb.CreateNoticeRequest, context: Context) -> pb.Notice:
        return await self.notices.create(current_principal(), request)

    async def GetNotice(self, request: pb.GetNoticeRequest, context: Context) -> pb.Notice:
        return await self.notices.get(current_principal(), request.name)

    async def ListNotices(self, request: pb.ListNoticesRequest, context: Context) -> pb.ListNoticesResponse:
        rows, token = await self.notices.list(
            current_principal(), request.node, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListNoticesResponse(notices=[to_pb(r) for r in rows], next_page_token=token)

    async def CancelNotice(self, request: pb.CancelNoticeRequest, context: Context) -> pb.Notice:
        return await self.notices.cancel(current_principal(), request.name)

    async def ListNoticeRecipients(
        self, request: pb.ListNoticeRecipientsRequest, context: Context
    ) -> pb.ListNoticeRecipientsResponse:
        rows, token = await self.notices.recipients(
            current_principal(),
            request.name,
            request.filter,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListNoticeRecipientsResponse(
            recipients=[convert.notice_recipient(r) for r in rows], next_page_token=token
        )

    async def GetPreferences(self, request: pb.GetPreferencesRequest, context: Context) -> pb.Preferences:
        return await self.preferences.get(current_principal())

    async def UpdatePreferences(
        self, request: pb.UpdatePreferencesRequest, context: Context
    ) -> pb.Preferences:
        return await self.preferences.update(current_principal(), request.preferences)
