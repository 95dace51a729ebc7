"""Descriptor look-ups typed for the checker (the upb runtime classes implement these descriptors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message


def descriptor_of(message: type[Message] | Message) -> Descriptor:
    return cast(Descriptor, message.DESCRIPTOR)


def fields_of(message: type[Message] | Message) -> Mapping[str, FieldDescriptor]:
    return descriptor_of(message).fields_by_name


def enum_type(fd: FieldDescriptor) -> EnumDescriptor:
    if fd.enum_type is None:
        raise TypeError(f"{fd.full_name} is not an enum field")
    return fd.enum_type


def message_type(fd: FieldDescriptor) -> Descriptor:
    if fd.message_type is None:
        raise TypeError(f"{fd.full_name} is not a message field")
    return fd.message_type
