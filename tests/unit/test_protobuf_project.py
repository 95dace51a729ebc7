"""govkit.protobuf.project: an event's facts copied from the resource message they are about."""

from __future__ import annotations

from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from gov.tickets.v1 import tickets_pb2 as tpb
from govkit.protobuf import project


def test_shared_fields_are_copied_and_the_rest_given() -> None:
    award = pb.Award(
        name="awards/a1",
        recipient="users/u1",
        account="accounts/c1",
        kind=pb.INDICATOR_KIND_PENALTY,
        points=5,
        note="not in the facts",
        entry="entries/a1",
    )
    facts = project(award, events_pb2.AwardFacts, award="awards/a1", node="yuhu/wanlou")
    assert facts == events_pb2.AwardFacts(
        award="awards/a1",
        recipient="users/u1",
        account="accounts/c1",
        kind=pb.INDICATOR_KIND_PENALTY,
        points=5,
        node="yuhu/wanlou",  # given beats copied
        entry="entries/a1",
    )


def test_repeated_and_message_fields() -> None:
    entry = pb.Entry(name="entries/e1", expired_entries=["entries/e0", "entries/e2"])
    facts = project(entry, events_pb2.EntryFacts, entry=entry.name)
    assert list(facts.expired_entries) == ["entries/e0", "entries/e2"]
    # An unset message field stays unset rather than becoming an empty message.
    unit = tpb.UnitAssignment(unit="units/u1")
    assert not project(unit, tpb.UnitAssignment).HasField("update_time")
    unit.update_time.seconds = 60
    assert project(unit, tpb.UnitAssignment).update_time.seconds == 60
