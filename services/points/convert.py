"""Rows to protobuf messages and enum names both ways."""

from __future__ import annotations

import json
from typing import Any

from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import protobuf
from govkit.protobuf import timestamp
from govkit.rowmap import RowMap, computed, fmt
from services.points import models

# Enum values <-> the lower-case names the tables store; the flows call them convert.name_of/value_of.
name_of = protobuf.stored_name
value_of = protobuf.from_stored_name


indicator = RowMap(pb.Indicator, models.Indicator, name=fmt("indicators/{id}"))
_AWARD = RowMap(
    pb.Award,
    models.Award,
    name=fmt("awards/{id}"),
    account=fmt("accounts/{account_id}"),
    indicator=fmt("indicators/{indicator_id}"),
    evidence_uris=computed(json.loads, "evidence"),
    applied_points="applied",
    outstanding_points="outstanding",
    entry=fmt("entries/{id}"),
    household_award=fmt("awards/{household_award}", optional=True),
)
_ACCOUNT = RowMap(
    pb.Account,
    models.Account,
    name=fmt("accounts/{id}"),
    balance=computed(lambda credits, debits: credits - debits, "credits_posted", "debits_posted"),
    available=computed(
        lambda credits, debits, pending: credits - debits - pending,
        "credits_posted",
        "debits_posted",
        "debits_pending",
    ),
    reserved="debits_pending",
    pending_credits="credits_pending",
    outstanding_penalty="outstanding",
)
_ENTRY = RowMap(
    pb.Entry,
    models.Entry,
    name=fmt("entries/{id}"),
    debit_account=fmt("accounts/{debit_account}"),
    credit_account=fmt("accounts/{credit_account}"),
    pending_entry=fmt("entries/{pending_id}", optional=True),
    reverses=fmt("entries/{reverses}", optional=True),
    settles=fmt("entries/{settles}", optional=True),
    award=fmt("awards/{award_id}", optional=True),
    redemption=fmt("redemptions/{redemption_id}", optional=True),
)
exchange_point = RowMap(
    pb.ExchangePoint,
    models.ExchangePoint,
    name=fmt("exchangePoints/{id}"),
    staff=computed(lambda text: [f"users/{u}" for u in json.loads(text)], "staff"),
)
item = RowMap(pb.Item, models.Item, name=fmt("exchangePoints/{exchange_point_id}/items/{id}"))
redemption = RowMap(
    pb.Redemption,
    models.Redemption,
    name=fmt("redemptions/{id}"),
    item=fmt("exchangePoints/{exchange_point_id}/items/{item_id}"),
    account=fmt("accounts/{account_id}"),
    entry=fmt("entries/{id}"),
)


def award(row: models.Award, entry_id: str | None = None) -> pb.Award:
    return _AWARD(row, entry=f"entries/{entry_id}") if entry_id else _AWARD(row)


def award_facts(row: models.Award) -> events_pb2.AwardFacts:
    return protobuf.project(award(row), events_pb2.AwardFacts, award=f"awards/{row.id}")


def account(row: models.Account, expiring: int = 0, next_expiry: Any = None) -> pb.Account:
    return _ACCOUNT(row, expiring_points=expiring, next_expire_time=timestamp(next_expiry))


def entry(row: models.Entry, expired_entries: list[str] | None = None) -> pb.Entry:
    return _ENTRY(row, expired_entries=[f"entries/{e}" for e in expired_entries or []])


def entry_facts(row: models.Entry, expired_entries: list[str] | None = None) -> events_pb2.EntryFacts:
    return protobuf.project(
        entry(row, expired_entries),
        events_pb2.EntryFacts,
        entry=f"entries/{row.id}",
        account=f"accounts/{row.account_id}",
    )


def redemption_facts(row: models.Redemption) -> events_pb2.RedemptionFacts:
    return protobuf.project(
        redemption(row),
        events_pb2.RedemptionFacts,
        redemption=f"redemptions/{row.id}",
        exchange_point=f"exchangePoints/{row.exchange_point_id}",
    )
