"""JSON shapes of targeted notices (broadcasts) and a person's preferences, declared over the
protobuf messages (gateway.rest).

A notice is referred to by its id; its node is a path with slashes (with the `ref`, dots, beside it
for URLs); people are `users/{id}`. Enums are lower-case names without their prefix (`sending`,
`elderly_alone`), times RFC 3339 in UTC.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from gateway.blocks_resources import NodePath, TagName
from gateway.rest import Body, Out, ProtoEnum, View, from_pb, proto_enums, to_pb
from gateway.rest.names import id_out, path_out, ref_out
from gov.notifications.v1 import notifications_pb2 as pb

__all__ = ["from_pb", "to_pb"]

NOTICE_ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
CATEGORY_PATTERN = r"^[a-z0-9_-]{1,40}$"


class NoticeStateName(ProtoEnum, proto=pb.NoticeState): ...


class ReadFilterName(ProtoEnum, proto=pb.ReadFilter): ...


class PreferenceChannelName(ProtoEnum, proto=pb.Channel): ...


class DigestFrequencyName(ProtoEnum, proto=pb.DigestFrequency): ...


PROTO_ENUMS = proto_enums(NoticeStateName, ReadFilterName, PreferenceChannelName, DigestFrequencyName)


class Notice(
    View,
    message=pb.Notice,
    fields={
        "id": id_out("Id of the notice"),
        "name": "Resource name, `notices/{id}`",
        "node": path_out("Path of the node whose residents hear it"),
        "node_ref": ref_out("node"),
        "title": None,
        "body": None,
        "urgent": "Urgent notices (safety) bypass quiet hours on outside channels",
        "category": None,
        "household_tag": Out(description="Only households with this tag heard it", nullable=True),
        "state": None,
        "sender": "`users/{id}`",
        "recipients_written": "Residents told so far",
        "recipients_total": "The audience's size, known once it is resolved (0 until then)",
        "households_done": "Households resolved so far",
        "read_count": "Recipients who have read it (single notice only)",
        "create_time": None,
        "complete_time": Out(description="When it completed or was cancelled", nullable=True),
    },
): ...


class NoticePage(View, item=Notice, source="notices"): ...


class NoticeRecipient(
    View,
    message=pb.NoticeRecipient,
    fields={
        "user": "`users/{id}`",
        "deliver_time": "When the notice reached their inbox",
        "read_time": Out(description="When they read it; null while unread", nullable=True),
    },
): ...


class NoticeRecipientPage(View, item=NoticeRecipient, source="recipients"): ...


class NewNotice(Body):
    node: NodePath = Field(
        description="Path of the block, community, street or district", examples=["yuhu/wanlou/yaowan"]
    )
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        examples=["防溺水安全提醒"]
    )
    body: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = Field(
        examples=["暑期将至，请看护好孩子，不到河边、水塘戏水。"]
    )
    urgent: bool = Field(False, description="Safety notices: bypass quiet hours on outside channels")
    category: Annotated[str, StringConstraints(max_length=40, pattern=rf"^$|{CATEGORY_PATTERN}")] = Field(
        "", description="e.g. safety, epidemic, weather; default general", examples=["safety"]
    )
    household_tag: TagName | None = Field(None, description="Only households carrying this tag")


# ----------------------------------------------------------------------------- preferences

KIND_PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*)$"
CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


class ChannelPreference(
    View,
    message=pb.ChannelPreference,
    fields={
        "kind": "A message kind (`ticket.accepted`), or `*` for every kind without its own row",
        "channel": None,
        "enabled": None,
        "digest": Out(
            description="hourly or daily: held and sent as one message listing them", nullable=True
        ),
        "digest_time": Out(description="daily: HH:MM[:SS] in the quiet hours' time zone", nullable=True),
    },
): ...


class QuietHours(
    View,
    message=pb.QuietHours,
    fields={
        "enabled": None,
        "start": "Wall-clock start, HH:MM[:SS]",
        "end": "Wall-clock end, HH:MM[:SS]; before the start: wraps past midnight",
        "time_zone": "IANA time zone",
    },
): ...


class Preferences(
    View,
    message=pb.Preferences,
    fields={
        "name": "`users/{id}/preferences`",
        "channels": Out(description="Channels switched on or off per kind; the rest are on"),
        "quiet_hours": None,
        "update_time": Out(description="Null while never changed (the defaults apply)", nullable=True),
    },
): ...


class ChannelPreferenceBody(Body):
    kind: Annotated[str, StringConstraints(max_length=60, pattern=KIND_PATTERN)] = Field(
        examples=["ticket.accepted"]
    )
    channel: PreferenceChannelName = Field(
        description="sms, email or webhook; the inbox cannot be switched off"
    )
    enabled: bool
    digest: DigestFrequencyName | None = Field(None, description="hourly or daily; null: one by one")
    digest_time: Annotated[str, StringConstraints(pattern=rf"^$|{CLOCK_PATTERN}")] = Field(
        "", description="daily: when, in the quiet hours' time zone", examples=["08:30"]
    )


class QuietHoursBody(Body):
    enabled: bool = True
    start: Annotated[str, StringConstraints(pattern=rf"^$|{CLOCK_PATTERN}")] = Field("", examples=["22:00"])
    end: Annotated[str, StringConstraints(pattern=rf"^$|{CLOCK_PATTERN}")] = Field("", examples=["07:00"])
    time_zone: Annotated[str, StringConstraints(max_length=60)] = Field("", examples=["Asia/Shanghai"])


class PreferencesBody(Body):
    channels: list[ChannelPreferenceBody] = Field(default_factory=list, max_length=200)
    quiet_hours: QuietHoursBody | None = Field(
        None, description="Omitted: the defaults (22:00-07:00 Asia/Shanghai)"
    )
