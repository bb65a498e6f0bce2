"""Capturing interactions through the library: the row, its ledger entry, and bad input."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from core_support import db_state, raises_and_changes_nothing, table_counts
from memwarden import Memwarden, Settings
from memwarden.audit.actor import acting_as
from memwarden.core import capture
from memwarden.errors import InvalidInputError, NotFoundError


def test_capture_stores_the_exchange_and_records_metadata_not_text(mw: Memwarden) -> None:
    with acting_as("agent:claude-code"):
        stored = mw.capture("atlas", "I prefer tabs.", "Noted, tabs it is.", "claude-code")
    assert stored.id > 0 and stored.client == "claude-code"
    again = mw.get_interaction(stored.id)
    assert (again.prompt, again.response, again.project) == (
        "I prefer tabs.",
        "Noted, tabs it is.",
        "atlas",
    )
    entry = mw.recent(limit=1)[0]
    assert (entry.entity_type, entry.entity_id, entry.action, entry.actor) == (
        "interaction",
        str(stored.id),
        "captured",
        "agent:claude-code",
    )
    assert entry.after is not None
    assert entry.after["prompt_sha256"] == hashlib.sha256(b"I prefer tabs.").hexdigest()
    assert "I prefer tabs." not in json.dumps(entry.after), "the ledger keeps digests, not text"
    assert mw.verify().ok


def test_capture_keeps_a_given_time_and_lists_newest_first(mw: Memwarden) -> None:
    old = mw.capture("atlas", "first", "one", created_at="2026-01-02T03:04:05")
    new = mw.capture("atlas", "second", "two")
    assert old.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert [i.id for i in mw.list_interactions(project="atlas")] == [new.id, old.id]
    assert [i.id for i in mw.list_interactions(after_id=new.id)] == [old.id]


BAD = [
    ("", "an answer", "", "prompt is empty"),
    ("a question", "   \n ", "", "response is empty"),
    ("a\x00b", "c", "", "NUL"),
    ("a question", 42, "", "must be text"),
    ("a question", "an answer", "bad\nclient", "client"),
]


def test_bad_interactions_are_refused_and_change_nothing(mw: Memwarden) -> None:
    for prompt, response, client, message in BAD:
        raises_and_changes_nothing(
            mw,
            InvalidInputError,
            lambda p=prompt, r=response, c=client: mw.capture("atlas", p, r, c),
            match=message,
        )


def test_the_size_limit_is_configurable_and_counts_both_sides(settings: Settings) -> None:
    small = settings.model_copy(update={"max_interaction_bytes": 20})
    with Memwarden.init(small) as mw:
        mw.add_project("atlas")
        mw.capture("atlas", "a" * 10, "é" * 5)  # 10 + 10 bytes: exactly at the limit
        raises_and_changes_nothing(
            mw,
            InvalidInputError,
            lambda: mw.capture("atlas", "a" * 11, "é" * 5),
            match="21 bytes, over the maximum of 20 .MEMWARDEN_MAX_INTERACTION_BYTES",
        )


def test_unknown_project_and_bad_time_are_refused(mw: Memwarden) -> None:
    raises_and_changes_nothing(
        mw, NotFoundError, lambda: mw.capture("nope", "q", "a"), match="unknown project 'nope'"
    )
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.capture("bad name!", "q", "a"), match="invalid project"
    )
    raises_and_changes_nothing(
        mw, InvalidInputError, lambda: mw.capture("atlas", "q", "a", created_at="yesterday")
    )


def test_a_time_past_the_clock_skew_allowance_is_refused(mw: Memwarden) -> None:
    ahead = datetime.now(UTC) + capture.MAX_FUTURE_SKEW
    soon = mw.capture("atlas", "q", "a", created_at=ahead - timedelta(seconds=30))
    assert soon.created_at <= ahead
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.capture("atlas", "q", "a", created_at=ahead + timedelta(minutes=1)),
        match="more than 5 minutes in the future",
    )
    raises_and_changes_nothing(
        mw,
        InvalidInputError,
        lambda: mw.capture("atlas", "q", "a", created_at="9999-12-31T23:59:59-05:00"),
        match="out of range",
    )
    # The JSON-lines import takes its times through the same check.
    later = (ahead + timedelta(hours=1)).isoformat()
    lines = [
        json.dumps({"project": "atlas", "prompt": "p1", "response": "r1", "time": later}),
        json.dumps({"project": "atlas", "prompt": "p2", "response": "r2", "time": "2025-01-01"}),
    ]
    report = mw.capture_lines(lines)
    assert [e.line for e in report.errors] == [1] and len(report.captured) == 1
    assert "in the future" in report.errors[0].message


def test_bulk_import_reports_bad_lines_by_number_and_keeps_the_good_ones(mw: Memwarden) -> None:
    mw.add_project("hermes")
    lines = [
        json.dumps({"project": "atlas", "prompt": "p1", "response": "r1", "client": "c"}),
        "{not json",
        "",
        json.dumps({"prompt": "p2", "response": "r2"}),  # no project: the default applies
        json.dumps(["a", "list"]),
        json.dumps({"project": "ghost", "prompt": "p", "response": "r"}),
        json.dumps({"project": "hermes", "prompt": "p3", "response": ""}),
        json.dumps({"project": "hermes", "prompt": "p4"}),
        b"\xff\xfe not utf-8",
        json.dumps({"project": "hermes", "prompt": "p5", "response": "r5", "time": "2026-03-01"}),
    ]
    report = mw.capture_lines(lines, default_project="atlas")
    assert [(e.line, e.message.split(":")[0]) for e in report.errors] == [
        (2, "invalid JSON"),
        (5, "expected a JSON object, got list"),
        (6, "unknown project 'ghost'"),
        (7, "the response is empty"),
        (8, "missing field(s)"),
        (9, "not valid UTF-8 (byte 1)"),
    ]
    assert report.blank_lines == 1 and len(report.captured) == 3
    kept = sorted((i.project, i.prompt) for i in mw.list_interactions())
    assert kept == [("atlas", "p1"), ("atlas", "p2"), ("hermes", "p5")]
    assert report.to_dict()["first_id"] == report.captured[0]


def test_a_lone_surrogate_or_a_deep_line_is_that_lines_error_not_the_imports(
    mw: Memwarden,
) -> None:
    """A line holding a lone surrogate (escaped, as JSON allows) or nested 100,000 deep ended
    the whole import with an unexpected UnicodeEncodeError or RecursionError, and the good
    lines were not kept (found by an attack session)."""
    lines = [
        json.dumps({"project": "atlas", "prompt": "p1", "response": "r1"}),
        '{"project": "atlas", "prompt": "lone \\ud800", "response": "r"}',
        '{"project": "atlas", "prompt": "p", "response": "r", "client": "\\udfff"}',
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"project": "atlas", "prompt": "p2", "response": "r2"}),
    ]
    report = mw.capture_lines(lines)
    assert [(e.line, e.message.split(" (")[0]) for e in report.errors] == [
        (2, "the interaction is not valid Unicode text"),
        (3, "the client must be a printable name of at most 200 characters"),
        (4, "invalid JSON: nested too deeply"),
    ]
    assert sorted(i.prompt for i in mw.list_interactions()) == ["p1", "p2"]


def test_bulk_import_commits_in_batches_and_logs_each_interaction(mw: Memwarden) -> None:
    lines = [json.dumps({"project": "atlas", "prompt": f"p{i}", "response": "r"}) for i in range(7)]
    lines.insert(3, "oops")
    report = capture.import_lines(mw.runtime, lines, batch_size=2)
    assert len(report.captured) == 7 and [e.line for e in report.errors] == [4]
    captured = [r for r in mw.recent(limit=50) if r.action == "captured"]
    assert len(captured) == 7 and mw.verify().ok


def test_a_line_too_long_to_hold_an_interaction_is_refused_unparsed(settings: Settings) -> None:
    small = settings.model_copy(update={"max_interaction_bytes": 100})
    with Memwarden.init(small) as mw:
        mw.add_project("atlas")
        huge = json.dumps({"project": "atlas", "prompt": "x" * 5000, "response": "y"})
        report = mw.capture_lines(
            [huge, json.dumps({"project": "atlas", "prompt": "a", "response": "b"})]
        )
        assert [e.line for e in report.errors] == [
            1
        ] and "over what an interaction" in report.errors[0].message
        assert len(report.captured) == 1


def test_an_all_bad_import_changes_nothing(mw: Memwarden) -> None:
    before = db_state(mw)
    report = mw.capture_lines(
        ["nope", json.dumps({"project": "ghost", "prompt": "a", "response": "b"})]
    )
    assert len(report.errors) == 2 and not report.captured
    assert db_state(mw) == before


def test_interaction_lookup_errors(mw: Memwarden) -> None:
    with pytest.raises(NotFoundError, match="interaction 999 not found"):
        mw.get_interaction(999)
    with pytest.raises(InvalidInputError, match="limit"):
        mw.list_interactions(limit=0)
    assert table_counts(mw)["interactions"] == 0
