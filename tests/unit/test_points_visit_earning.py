"""Which household visits earn (plain data, no I/O)."""

from __future__ import annotations

from gov.blocks.v1 import events_pb2 as blocks_events
from services.points.earning import visit_earns


def _visit(**fields: object) -> blocks_events.VisitSummary:
    values: dict[str, object] = {
        "name": "households/h1/visits/v1",
        "household": "households/h1",
        "block": "yuhu/wanlou/yaowan/b01",
        "issues_found": 2,
        "issues_resolved": 1,
        **fields,
    }
    return blocks_events.VisitSummary(**values)  # type: ignore[arg-type]


def test_a_visit_earns_when_it_resolved_an_issue() -> None:
    assert visit_earns(_visit())
    assert visit_earns(_visit(issues_found=0, issues_resolved=3))


def test_a_visit_that_resolved_nothing_or_names_no_household_or_block_earns_nothing() -> None:
    assert not visit_earns(_visit(issues_resolved=0))
    assert not visit_earns(_visit(household=""))
    assert not visit_earns(_visit(block=""))
