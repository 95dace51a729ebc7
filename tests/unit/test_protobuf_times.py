"""govkit.protobuf's fast Timestamp and enum conversions give what protobuf's own would."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from gov.tickets.v1 import tickets_pb2 as pb
from govkit.protobuf import from_stored_name, timestamp

TIMES = [
    dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC),  # negative seconds, positive nanos
    dt.datetime(1900, 5, 6, 7, 8, 9, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 7, 1, 12, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=7))),
    dt.datetime(2026, 7, 1, 12, 0, 0, 5),  # naive: taken as UTC, as FromDatetime does
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
]


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_timestamp_equals_from_datetime(value: dt.datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value)
    assert timestamp(value) == expected


def test_timestamp_none_stays_unset() -> None:
    assert timestamp(None) is None


def test_from_stored_name_remembers_known_names_only() -> None:
    assert from_stored_name(pb.TicketState, "in_progress") == pb.TICKET_STATE_IN_PROGRESS
    assert from_stored_name(pb.TicketState, "in_progress") == pb.TICKET_STATE_IN_PROGRESS  # remembered
    assert from_stored_name(pb.TicketState, "") is None
    for _ in range(2):  # an unknown name fails every time, not only the first
        with pytest.raises(ValueError):
            from_stored_name(pb.TicketState, "no_such_state")
