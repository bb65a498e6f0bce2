"""The operation log's encoding (any value, safely), normalisation (shapes, never text),
the 16 KiB row limit, and the once-per-burst failure report. Pure functions: no database."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from uuid import UUID

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from memwarden.audit.oplog.encoding import (
    MAX_ITEMS,
    MAX_ROW_BYTES,
    TRUNCATED,
    dumps,
    encode_parts,
    to_jsonable,
)
from memwarden.audit.oplog.failures import BurstReporter
from memwarden.audit.oplog.normalise import normalise

SECRET = "the launch codes are 0451"


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


@dataclass
class Inner:
    when: datetime
    tags: set[str]


class Point(NamedTuple):
    x: int
    y: int


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


class ExplodingMapping(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("cannot iterate")


MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
UID = UUID("12345678-1234-5678-1234-567812345678")


def roundtrip(value: Any) -> Any:
    """What the log would store for ``value``, read back."""
    return json.loads(dumps(to_jsonable(value)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MOMENT, "2026-01-02T03:04:05.678901+00:00"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (date(2026, 1, 2), "2026-01-02"),
        (time(3, 4, 5), "03:04:05"),
        (timedelta(seconds=90, milliseconds=500), 90.5),
        (UID, "12345678-1234-5678-1234-567812345678"),
        (Decimal("3.14159265358979323846264338327950288"), "3.14159265358979323846264338327950288"),
        (Path("/var/lib/memwarden/db.sqlite"), "/var/lib/memwarden/db.sqlite"),
        (PurePosixPath("a/b"), "a/b"),
        (b"\x00\xffab", {"$bytes": "AP9hYg==", "len": 4}),
        (bytearray(b"xyz"), {"$bytes": "eHl6", "len": 3}),
        (memoryview(b"hi"), {"$bytes": "aGk=", "len": 2}),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b", "a"}), ["a", "b"]),
        ({1, "a", None}, ["a", 1, None]),  # mixed types: in the order of their JSON text
        (ValueError("bad value"), {"$exception": "ValueError", "message": "bad value"}),
        (
            BadStrError(),
            {
                "$exception": "test_oplog_encoding.BadStrError",
                "message": "<unprintable test_oplog_encoding.BadStrError>",
            },
        ),
        (Colour.RED, "red"),
        (Size.BIG, 3),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "-inf"),
        (1.5, 1.5),
        (True, True),
        (None, None),
        (2**80, 2**80),
        (complex(1, 2), {"$repr": "(1+2j)"}),
        (Point(1, 2), {"x": 1, "y": 2}),
        (
            Inner(MOMENT, {"b", "a"}),
            {"when": "2026-01-02T03:04:05.678901+00:00", "tags": ["a", "b"]},
        ),
        (
            {(1, 2): "tuple key", 3: "int key", MOMENT: "datetime key"},
            {
                "[1,2]": "tuple key",
                "3": "int key",
                "2026-01-02T03:04:05.678901+00:00": "datetime key",
            },
        ),
        (BadRepr(), {"$repr": "<unrepresentable test_oplog_encoding.BadRepr>"}),
        (
            ExplodingMapping(a=1),
            {"$unencodable": "test_oplog_encoding.ExplodingMapping", "error": "RuntimeError"},
        ),
        (type, {"$repr": "<class 'type'>"}),
    ],
    ids=lambda value: type(value).__name__,
)
def test_every_awkward_value_is_encoded(value: Any, expected: Any) -> None:
    assert roundtrip(value) == expected


def test_anything_else_becomes_its_repr() -> None:
    stored = roundtrip({"o": object(), "gen": (i for i in range(3)), "fn": len})
    assert stored["o"]["$repr"].startswith("<object object at")
    assert stored["gen"]["$repr"].startswith("<generator object")
    assert stored["fn"] == {"$repr": "<built-in function len>"}


def test_cycles_depth_and_huge_containers_are_cut() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert roundtrip(loop) == [1, {"$cycle": "list"}]
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    depth = 0
    node = roundtrip(deep)
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == {"$depth": "list"} and depth < 100
    big = roundtrip(list(range(MAX_ITEMS + 5)))
    assert len(big) == MAX_ITEMS + 1 and big[-1] == {"$omitted": 5}
    wide = roundtrip({str(i): i for i in range(MAX_ITEMS + 2)})
    assert wide["$omitted"] == 2


def test_a_shared_value_is_not_a_cycle() -> None:
    shared = [1, 2]
    assert roundtrip([shared, shared]) == [[1, 2], [1, 2]]


def test_strings_that_utf8_cannot_hold_are_stored_escaped() -> None:
    text = dumps(to_jsonable({"s": "lone \ud800 surrogate", "nul": "a\x00b"}))
    text.encode("utf-8")  # storable
    assert json.loads(text) == {"s": "lone \ud800 surrogate", "nul": "a\x00b"}
    assert "\x00" not in text


def test_a_row_over_16_kib_is_truncated_with_a_marker() -> None:
    request = {"k": 10, "project": "atlas"}
    response = {"text": "x" * 100_000}
    parts = encode_parts({"request": request, "response": response, "metadata": None})
    assert parts["metadata"] is None
    assert json.loads(parts["request"] or "") == request  # the small part is intact
    marker = json.loads(parts["response"] or "")
    assert marker[TRUNCATED] is True
    assert marker["bytes"] == len(dumps(response).encode())
    assert marker["head"].startswith('{"text":"xxxx')
    total = sum(len(p.encode()) for p in parts.values() if p is not None)
    assert MAX_ROW_BYTES - 200 < total <= MAX_ROW_BYTES


def test_truncation_survives_text_that_escaping_inflates() -> None:
    nasty = '"\\\x01' * 20_000  # every character grows when escaped again
    parts = encode_parts({"request": nasty, "response": nasty})
    total = sum(len(p.encode()) for p in parts.values() if p is not None)
    assert total <= MAX_ROW_BYTES
    for part in parts.values():
        assert json.loads(part or "")[TRUNCATED] is True


def test_a_row_under_the_limit_is_untouched() -> None:
    parts = encode_parts({"request": {"a": "é" * 100}})
    assert json.loads(parts["request"] or "") == {"a": "é" * 100}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=3000)
    | st.binary(max_size=500)
    | st.datetimes()
    | st.uuids()
    | st.decimals(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=8)
        | st.dictionaries(st.text(max_size=20), children, max_size=8)
        | st.frozensets(st.integers() | st.text(max_size=10), max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=60, deadline=None)
@given(
    request=json_values, response=json_values, metadata=json_values, limit=st.integers(300, 20_000)
)
def test_any_row_is_valid_json_within_the_limit(
    request: Any, response: Any, metadata: Any, limit: int
) -> None:
    parts = encode_parts({"request": request, "response": response, "metadata": metadata}, limit)
    total = 0
    for text in parts.values():
        if text is None:
            continue
        json.loads(text)
        total += len(text.encode("utf-8"))
    assert total <= limit


# -- normalisation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeMemory:
    id: int
    project: str
    type: str
    content: str
    status: str
    created_at: datetime


def test_normalised_values_keep_parameters_and_drop_text() -> None:
    memory = FakeMemory(7, "atlas", "project", SECRET, "active", MOMENT)
    shaped = normalise(
        {
            "query": SECRET,
            "project": "atlas",
            "types": ["project", "knowledge"],
            "k": 10,
            "paths": [Path("/docs/a.md")],
            "when": MOMENT,
            "raw": SECRET.encode(),
            "error": ValueError(SECRET),
            "note": None,
            "result": [memory, memory],
            "ids": [1, 2, 3],
            "nested": {"deeper": {"content": SECRET}},
            "callback": print,
        }
    )
    assert shaped == {
        "query": {"chars": len(SECRET)},
        "project": "atlas",
        "types": ["project", "knowledge"],
        "k": 10,
        "paths": ["/docs/a.md"],
        "when": MOMENT,
        "raw": {"bytes": len(SECRET)},
        "error": {"exception": "ValueError"},
        "note": None,
        "result": {"count": 2, "ids": [7, 7]},
        "ids": {"count": 3, "ids": [1, 2, 3]},
        "nested": {"deeper": {"content": {"chars": len(SECRET)}}},
        "callback": {"callable": "print"},
    }
    assert normalise(memory) == {
        "id": 7,
        "project": "atlas",
        "type": "project",
        "content": {"chars": len(SECRET)},
        "status": "active",
        "created_at": MOMENT,
    }
    assert SECRET not in dumps(to_jsonable(shaped))


def test_a_text_value_never_survives_under_an_unknown_key() -> None:
    # Kept keys only keep strings; a list of texts under a content key is only counted.
    shaped = normalise({"contents": [SECRET, SECRET], "kind": SECRET * 20, "x": (SECRET,)})
    assert shaped["contents"] == {"count": 2}
    assert shaped["x"] == {"count": 1}
    assert len(shaped["kind"]) == 200  # a parameter, clipped


# -- the failure report ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_are_logged_once_per_burst_with_a_count() -> None:
    clock = Clock()
    reporter = BurstReporter(every_s=60, clock=clock)
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            reporter.failure(RuntimeError("table gone"), 500)
            clock.now += 1
        failed = [e for e in logs if e["event"] == "oplog_write_failed"]
        assert len(failed) == 1
        assert failed[0]["count"] == 1 and failed[0]["error_type"] == "RuntimeError"
        clock.now += 60  # the window passed: the next failure is reported with what it stood for
        reporter.failure(RuntimeError("table gone"), 500)
        failed = [e for e in logs if e["event"] == "oplog_write_failed"]
        assert [e["count"] for e in failed] == [1, 5]
        assert failed[-1]["burst_failures"] == 6 and failed[-1]["burst_rows_lost"] == 3000
        reporter.success()
        reporter.success()  # no burst: nothing more
    over = [e for e in logs if e["event"] == "oplog_write_burst_over"]
    assert len(over) == 1
    assert (
        over[0]["failures"] == 6 and over[0]["rows_lost"] == 3000 and over[0]["how"] == "recovered"
    )
