"""Rows to API messages and API enums to the names stored in rows."""

from __future__ import annotations

from gov.notifications.v1 import notifications_pb2 as pb
from govkit.errors import InvalidArgument
from govkit.protobuf import timestamp
from services.notifications.models import Delivery, Endpoint, InboxItem
from services.notifications.template_admin import TemplateView
from services.notifications.texts import PARAMETERS

CHANNELS: dict[str, pb.Channel] = {
    "inbox": pb.CHANNEL_INBOX,
    "webhook": pb.CHANNEL_WEBHOOK,
    "sms": pb.CHANNEL_SMS,
    "email": pb.CHANNEL_EMAIL,
}
_CHANNEL_NAMES = {v: k for k, v in CHANNELS.items()}
STATES: dict[str, pb.DeliveryState] = {
    "queued": pb.DELIVERY_STATE_QUEUED,
    "sending": pb.DELIVERY_STATE_SENDING,
    "sent": pb.DELIVERY_STATE_SENT,
    "failed": pb.DELIVERY_STATE_FAILED,
    "dead": pb.DELIVERY_STATE_DEAD,
    "held": pb.DELIVERY_STATE_HELD,
    "digested": pb.DELIVERY_STATE_DIGESTED,
}
_STATE_NAMES = {v: k for k, v in STATES.items()}


def channel_name(value: int, field: str, *, optional: bool = False) -> str:
    if value == pb.CHANNEL_UNSPECIFIED and optional:
        return ""
    name = _CHANNEL_NAMES.get(value)  # type: ignore[call-overload]  # an int from the wire
    if name is None:
        raise InvalidArgument("is not a channel", field=field)
    return name


def state_name(value: int, field: str) -> str:
    if value == pb.DELIVERY_STATE_UNSPECIFIED:
        return ""
    name = _STATE_NAMES.get(value)  # type: ignore[call-overload]  # an int from the wire
    if name is None:
        raise InvalidArgument("is not a delivery state", field=field)
    return name


def inbox_item(row: InboxItem) -> pb.InboxItem:
    return pb.InboxItem(
        name=f"{row.recipient}/inboxItems/{row.id}",
        sequence=row.seq,
        kind=row.kind,
        title=row.title,
        body=row.body,
        link=row.link,
        resource=row.resource,
        urgent=row.urgent,
        create_time=timestamp(row.create_time),
        read_time=timestamp(row.read_time),
    )


def delivery(row: Delivery) -> pb.Delivery:
    return pb.Delivery(
        name=f"deliveries/{row.id}",
        recipient=row.recipient,
        channel=CHANNELS[row.channel],
        kind=row.kind,
        state=STATES[row.state],
        attempts=row.attempts,
        last_error=row.last_error,
        event_id=row.event_id,
        node=row.node,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
        next_attempt_time=timestamp(row.next_attempt_time),
        sent_time=timestamp(row.sent_time),
        digest=f"deliveries/{row.digest_id}" if row.digest_id else "",
    )


def endpoint(row: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        name=f"endpoints/{row.id}",
        owner=row.owner,
        channel=CHANNELS[row.channel],
        address=row.address,
        create_time=timestamp(row.create_time),
    )


def template(view: TemplateView) -> pb.Template:
    return pb.Template(
        name=view.name,
        kind=view.kind,
        channel=CHANNELS[view.channel],
        locale=view.locale,
        subject=view.subject,
        body=view.body,
        customized=view.customized,
        update_time=timestamp(view.update_time),
        parameters=[*PARAMETERS.get(view.kind, ()), "link"],
    )


def notice_recipient(row: InboxItem) -> pb.NoticeRecipient:
    return pb.NoticeRecipient(
        user=row.recipient, deliver_time=timestamp(row.create_time), read_time=timestamp(row.read_time)
    )


DIGESTS: dict[str, pb.DigestFrequency] = {
    "": pb.DIGEST_FREQUENCY_UNSPECIFIED,
    "hourly": pb.DIGEST_FREQUENCY_HOURLY,
    "daily": pb.DIGEST_FREQUENCY_DAILY,
}
_DIGEST_NAMES = {v: k for k, v in DIGESTS.items()}


def digest_name(value: int, field: str) -> str:
    name = _DIGEST_NAMES.get(value)  # type: ignore[call-overload]  # an int from the wire
    if name is None:
        raise InvalidArgument("is not a digest frequency", field=field)
    return name
