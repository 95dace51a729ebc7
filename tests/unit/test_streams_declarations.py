"""govkit.streams: the declaration file and which changes could lose stored events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from govkit import streams
from govkit.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM
from govkit.streams import DeclarationError, StreamDeclaration, differences


def _decl(**changes: object) -> StreamDeclaration:
    raw: dict[str, object] = {"subjects": ["tickets.v1.>"], **changes}
    return StreamDeclaration.parse("TICKETS", raw)


def _current(**changes: object) -> StreamConfig:
    config = StreamConfig(
        name="TICKETS",
        subjects=["tickets.v1.>"],
        num_replicas=1,
        max_age=0.0,
        max_bytes=-1,
        max_msgs=-1,
        discard=DiscardPolicy.OLD,
        duplicate_window=600.0,
        storage=StorageType.FILE,
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_the_packaged_declarations_name_every_domain_and_the_dead_letters() -> None:
    decls = streams.load()
    assert set(decls) == {"IDENTITY", "BLOCKS", "TICKETS", "POINTS", "NOTIFICATIONS", DEAD_LETTER_STREAM}
    assert decls[DEAD_LETTER_STREAM].subjects == (f"{DEAD_LETTER_PREFIX}.>",)
    for name, decl in decls.items():
        if name != DEAD_LETTER_STREAM:
            assert decl.subjects == (f"{name.lower()}.v1.>",)
        # A relay that crashed after publishing republishes within this window.
        assert decl.duplicate_window >= 600


def test_json_with_the_same_structure_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "streams.json"
    path.write_text(json.dumps({"streams": {"TICKETS": {"subjects": ["tickets.v1.>"], "max_age": "7d"}}}))
    assert streams.load(path)["TICKETS"].max_age == 7 * 86400


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"subjects": []}, "streams.TICKETS.subjects"),
        ({"subjects": ["a.>"], "max_age": "7 days"}, "streams.TICKETS.max_age"),
        ({"subjects": ["a.>"], "max_bytes": -2}, "streams.TICKETS.max_bytes"),
        ({"subjects": ["a.>"], "replicas": 0}, "streams.TICKETS.replicas"),
        ({"subjects": ["a.>"], "discard": "oldest"}, "streams.TICKETS.discard"),
        ({"subjects": ["a.>"], "storage": "disk"}, "streams.TICKETS.storage"),
        ({"subjects": ["a.>"], "max_agee": "1h"}, "unknown keys"),
    ],
)
def test_a_bad_declaration_names_its_key(raw: dict[str, object], named: str) -> None:
    with pytest.raises(DeclarationError, match=named.replace(".", r"\.")):
        StreamDeclaration.parse("TICKETS", raw)


def test_the_same_configuration_is_no_change() -> None:
    assert differences(_decl(), _current()) == []
    # The server answers limits it was never given as None or -1: the same as unlimited.
    assert differences(_decl(), _current(max_bytes=None, max_msgs=None, max_age=None)) == []


@pytest.mark.parametrize(
    ("declared", "current", "key"),
    [
        ({"max_age": "1h"}, {}, "max_age"),  # unlimited -> 1 h
        ({"max_age": "1h"}, {"max_age": 7 * 86400.0}, "max_age"),
        ({"max_bytes": 1024}, {}, "max_bytes"),
        ({"max_bytes": 1024}, {"max_bytes": 4096}, "max_bytes"),
        ({"max_msgs": 10}, {}, "max_msgs"),
        ({"subjects": ["tickets.v2.>"]}, {}, "subjects"),
        ({"storage": "memory"}, {}, "storage"),
    ],
)
def test_changes_that_could_lose_events_are_marked(
    declared: dict[str, object], current: dict[str, object], key: str
) -> None:
    [change] = differences(_decl(**declared), _current(**current))
    assert change.key == key and change.lossy


@pytest.mark.parametrize(
    ("declared", "current", "key"),
    [
        ({}, {"max_age": 3600.0}, "max_age"),  # 1 h -> unlimited
        ({"max_bytes": 4096}, {"max_bytes": 1024}, "max_bytes"),
        ({"replicas": 3}, {}, "replicas"),
        ({}, {"num_replicas": 3}, "replicas"),
        ({"discard": "new"}, {}, "discard"),
        ({"duplicate_window": "20m"}, {}, "duplicate_window"),
        ({"subjects": ["tickets.v1.>", "tickets.v2.>"]}, {}, "subjects"),
    ],
)
def test_changes_that_keep_every_event_are_not_marked(
    declared: dict[str, object], current: dict[str, object], key: str
) -> None:
    [change] = differences(_decl(**declared), _current(**current))
    assert change.key == key and not change.lossy


def test_settings_the_declaration_does_not_name_are_kept() -> None:
    current = _current(max_msgs_per_subject=100, description="set by an operator")
    config = streams.desired_config(_decl(max_age="7d"), current)
    assert config.max_age == 7 * 86400 and config.max_msgs_per_subject == 100
    assert config.description == "set by an operator"
