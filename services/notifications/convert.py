"""Rows to API messages and API enums to the names stored in rows."""

from __future__ import annotations

from gov.notifications.v1 import notifications_pb2 as pb
from govkit.errors import InvalidArgument
from govkit.rowmap import RowMap, computed, fmt
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


inbox_item = RowMap(pb.InboxItem, InboxItem, name=fmt("{recipient}/inboxItems/{id}"), sequence="seq")
delivery = RowMap(
    pb.Delivery, Delivery, name=fmt("deliveries/{id}"), digest=fmt("deliveries/{digest_id}", optional=True)
)
# The secret is input only: written, never returned.
endpoint = RowMap(pb.Endpoint, Endpoint, name=fmt("endpoints/{id}"), secret=None)
template = RowMap(
    pb.Template, TemplateView, parameters=computed(lambda kind: [*PARAMETERS.get(kind, ()), "link"], "kind")
)
notice_recipient = RowMap(pb.NoticeRecipient, InboxItem, user="recipient", deliver_time="create_time")


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
