"""Domain events: the envelope, subjects, streams and W3C trace context in NATS headers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from opentelemetry import propagate
from opentelemetry.context import Context

from gov.common.v1 import event_pb2
from govkit.db import new_id, utcnow

# NATS header names the platform sets on every event.
MSG_ID_HEADER = "Nats-Msg-Id"
TYPE_HEADER = "Gov-Event-Type"
DEAD_LETTER_PREFIX = "deadletter"
DEAD_LETTER_STREAM = "DEADLETTER"

M = TypeVar("M", bound=Message)


def stream_name(domain: str) -> str:
    """One stream per domain: `identity` -> `IDENTITY`."""
    return domain.upper()


def stream_subjects(domain: str) -> list[str]:
    return [f"{domain}.v1.>"]


def dead_letter_subject(consumer: str, subject: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{consumer}.{subject}"


@dataclass(frozen=True)
class NewEvent:
    """An event about to be written to the outbox."""

    id: str
    type: str
    envelope: bytes


def build_event(
    event_type: str, payload: Message, *, actor: str, resource: str, time: dt.datetime | None = None
) -> NewEvent:
    """Wrap a payload in the common envelope; `event_type` is also the NATS subject."""
    if event_type.count(".") < 3:
        raise ValueError(f"event type must look like <domain>.v1.<resource>.<verb>: {event_type!r}")
    event_id = new_id()
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(time or utcnow())
    packed = any_pb2.Any()
    packed.Pack(payload)
    envelope = event_pb2.Event(
        id=event_id, type=event_type, time=ts, actor=actor, resource=resource, payload=packed
    )
    return NewEvent(id=event_id, type=event_type, envelope=envelope.SerializeToString())


def parse_event(data: bytes) -> event_pb2.Event:
    event = event_pb2.Event()
    event.ParseFromString(data)
    return event


def unpack_payload(event: event_pb2.Event, message_cls: type[M]) -> M:
    message = message_cls()
    if not event.payload.Unpack(message):
        raise ValueError(
            f"event {event.id} payload is {event.payload.TypeName()}, not {message_cls.__name__}"
        )
    return message


def inject_trace(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    propagate.inject(headers, context=context)
    return headers


def extract_trace(headers: dict[str, str] | None) -> Context:
    return propagate.extract(headers or {})
