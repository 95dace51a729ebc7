from __future__ import annotations

import datetime as dt

import grpc
import pytest

from gateway.problems import GRPC_TO_HTTP
from govkit import pagination
from govkit.errors import InvalidArgument


def test_page_tokens_round_trip_and_are_bound_to_filters() -> None:
    fp = pagination.fingerprint("users/1", "yuhu", None)
    token = pagination.encode_token({"t": "2026-11-23T00:00:00+00:00", "id": "abc"}, fp)
    assert pagination.decode_token(token, fp, t=dt.datetime, id=str) == {
        "t": dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        "id": "abc",
    }
    with pytest.raises(InvalidArgument, match="different filters"):
        other = pagination.fingerprint("users/1", "hetang", None)
        pagination.decode_token(token, other, t=dt.datetime, id=str)
    for bad in ("!!!", "e30", "bm90IGpzb24"):
        with pytest.raises(InvalidArgument) as err:
            pagination.decode_token(bad, fp, t=dt.datetime, id=str)
        assert err.value.field == "page_token"


def test_page_size_defaults_and_caps() -> None:
    assert pagination.page_size(0) == 50
    assert pagination.page_size(1000) == 200
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1)


def test_every_client_error_code_has_an_http_status() -> None:
    assert GRPC_TO_HTTP[grpc.StatusCode.INVALID_ARGUMENT][0] == 400
    assert GRPC_TO_HTTP[grpc.StatusCode.UNAUTHENTICATED][0] == 401
    assert GRPC_TO_HTTP[grpc.StatusCode.PERMISSION_DENIED][0] == 403
    assert GRPC_TO_HTTP[grpc.StatusCode.NOT_FOUND][0] == 404
    assert GRPC_TO_HTTP[grpc.StatusCode.ALREADY_EXISTS][0] == 409
    assert GRPC_TO_HTTP[grpc.StatusCode.FAILED_PRECONDITION][0] == 409
    assert GRPC_TO_HTTP[grpc.StatusCode.RESOURCE_EXHAUSTED][0] == 429
    assert GRPC_TO_HTTP[grpc.StatusCode.UNAVAILABLE][0] == 503
