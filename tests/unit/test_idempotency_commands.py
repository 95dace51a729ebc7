"""govkit.idempotency.Command: what makes two calls the same request."""

from __future__ import annotations

import pytest

from gov.tickets.v1 import tickets_pb2 as pb
from govkit.errors import InvalidArgument
from govkit.idempotency import Command


def _request(key: str, title: str = "电梯困人") -> pb.CreateTicketRequest:
    return pb.CreateTicketRequest(ticket=pb.Ticket(category="categories/lift", title=title), request_id=key)


def test_the_key_is_not_part_of_the_fingerprint_but_every_other_field_is() -> None:
    first = Command.of("CreateTicket", "users/a", _request("k1"))
    assert first.key == "k1" and first.scope == "CreateTicket:users/a"
    assert Command.of("CreateTicket", "users/a", _request("k2")).fingerprint == first.fingerprint
    assert Command.of("CreateTicket", "users/a", _request("k1", "别的")).fingerprint != first.fingerprint


def test_without_a_key_nothing_is_deduplicated() -> None:
    assert Command.of("CreateTicket", "users/a", _request("")) == Command("CreateTicket:users/a", "", "")


def test_a_key_longer_than_the_column_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as err:
        Command.of("CreateTicket", "users/a", _request("k" * 101))
    assert err.value.field == "request_id"


def test_long_callers_get_distinct_scopes_that_fit_the_column() -> None:
    a = Command.of("CreateTicket", "serviceAccounts/" + "a" * 100, _request("k"))
    b = Command.of("CreateTicket", "serviceAccounts/" + "a" * 99 + "b", _request("k"))
    assert len(a.scope) <= 100 and len(b.scope) <= 100 and a.scope != b.scope
