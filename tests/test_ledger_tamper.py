"""The tamper suite: an attacker with the database (SQLite file or PostgreSQL tables) but not
the key or the witness edits the ledger with raw SQL. Every kind of tampering is detected by
``verify``, at the right row, with a reason that names it. Both engines."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from conftest import raw_engine
from ledger_support import (
    attacker,
    delete_rows,
    fast_witness,
    head_seq,
    insert_row,
    move_rows,
    plain_digest,
    plain_tag,
    row_at,
    set_fields,
)
from memwarden import Memwarden
from memwarden.audit.actor import acting_as
from memwarden.audit.verify import parse_anchor
from memwarden.audit.witness import Head
from memwarden.core import opening
from memwarden.db import schema
from memwarden.db.engine import sqlite_path
from memwarden.errors import InvalidInputError, LedgerError, LedgerKeyMismatchError
from memwarden.observability.faults import faults

L, P = schema.ledger, schema.ledger_payloads


@dataclass
class Story:
    """A small history: two projects, three memories, state, and where each row landed."""

    a: int
    b: int
    c: int
    seq: dict[str, int]


def seq_of(mw: Memwarden, memory_id: int, action: str) -> int:
    return next(r.seq for r in mw.history(memory_id) if r.action == action)


@pytest.fixture
def story(mw: Memwarden) -> Story:
    fast_witness(mw)
    mw.add_project("borealis")
    with acting_as("alice"):
        a = mw.remember("atlas", "The launch window opens in March").memory.id
        b = mw.remember("atlas", "The fuel is kerosene").memory.id
        c = mw.remember("borealis", "The rover weighs 900 kg").memory.id
        mw.promote(a)
        mw.reinforce(a)
        mw.reject(b)
        mw.promote(c)
        mw.set_state("atlas", "config", "owner", "alice")
        mw.update(a, content="The launch window opens in April")
    seq = {
        "a_created": seq_of(mw, a, "created"),
        "b_created": seq_of(mw, b, "created"),
        "a_promoted": seq_of(mw, a, "promoted"),
        "a_reinforced": seq_of(mw, a, "reinforced"),
        "b_rejected": seq_of(mw, b, "rejected"),
        "c_promoted": seq_of(mw, c, "promoted"),
        "a_updated": seq_of(mw, a, "updated"),
        "head": head_seq(mw),
    }
    assert seq["a_updated"] == seq["head"]
    report = mw.verify()
    assert report.ok, report.reason
    assert report.rows_checked == seq["head"] and report.checked_against == ["witness"]
    return Story(a, b, c, seq)


def broken(mw: Memwarden, seq: int | None, *words: str, **verify_args: Any) -> str:
    report = mw.verify(**verify_args)
    assert not report.ok, "tampering went unnoticed"
    assert report.first_bad_seq == seq, report.reason
    assert report.reason is not None
    for word in words:
        assert word in report.reason, report.reason
    return report.reason


# -- edited payloads and rows ----------------------------------------------------------------


def test_edited_payload(mw: Memwarden, story: Story) -> None:
    seq = story.seq["a_created"]
    body = row_at(mw, seq)["body"]
    with attacker(mw) as conn:
        conn.execute(sa.update(P).where(P.c.seq == seq).values(body=body.replace("March", "May")))
    broken(mw, seq, "payload was edited")


def test_edited_payload_with_a_recomputed_plain_digest(mw: Memwarden, story: Story) -> None:
    seq = story.seq["a_created"]
    body = row_at(mw, seq)["body"].replace("March", "May")
    with attacker(mw) as conn:
        conn.execute(sa.update(P).where(P.c.seq == seq).values(body=body))
        set_fields(conn, seq, payload_digest=plain_digest(body))
    broken(mw, seq, "was edited", "payload was edited too", "without the key")


@pytest.mark.parametrize("column", ["actor", "action", "ts", "entity_id", "project", "prev_tag"])
def test_edited_row(mw: Memwarden, story: Story, column: str) -> None:
    seq = story.seq["b_rejected"]
    row = row_at(mw, seq)
    forged = {
        "actor": "mallory",
        "action": "promoted",
        "ts": row["ts"].replace(row["ts"][:4], "2019"),
        "entity_id": str(story.a),
        "project": "borealis",
        "prev_tag": "f" * 64,
    }[column]
    with attacker(mw) as conn:
        set_fields(conn, seq, **{column: forged})
    broken(mw, seq, "was edited", "no longer match its tag")


def test_edited_row_with_a_recomputed_plain_chain(mw: Memwarden, story: Story) -> None:
    """The attacker re-hashes the edited row and relinks everything after it, without the key."""
    seq = story.seq["b_rejected"]
    originals = {later: row_at(mw, later) for later in range(seq, story.seq["head"] + 1)}
    with attacker(mw) as conn:
        set_fields(conn, seq, actor="mallory")
        prev = None
        for later, original in originals.items():
            row = {**original, "actor": "mallory"} if later == seq else dict(original)
            if prev is not None:
                row["prev_tag"] = prev
                set_fields(conn, later, prev_tag=prev)
            prev = plain_tag(row)
            set_fields(conn, later, tag=prev)
    broken(mw, seq, "was edited", "plain SHA-256")


# -- deleted, reordered, forged, copied and replayed rows --------------------------------------


def test_deleted_row_in_the_middle(mw: Memwarden, story: Story) -> None:
    seq = story.seq["a_promoted"]
    with attacker(mw) as conn:
        delete_rows(conn, seq)
    broken(mw, seq, f"row {seq} is missing (deleted)")


def test_deleted_row_and_the_rest_renumbered(mw: Memwarden, story: Story) -> None:
    seq, head = story.seq["a_promoted"], story.seq["head"]
    with attacker(mw) as conn:
        delete_rows(conn, seq)
        move_rows(conn, {old: old - 1 for old in range(seq + 1, head + 1)})
    broken(mw, seq, "deleted", "renumbered", f"written as row {seq + 1}")


def test_reordered_rows(mw: Memwarden, story: Story) -> None:
    seq = story.seq["a_promoted"]
    with attacker(mw) as conn:
        move_rows(conn, {seq: seq + 1, seq + 1: seq})
    broken(mw, seq, "reordered", f"written as row {seq + 1}")


def test_forged_row_appended_with_an_unkeyed_tag(mw: Memwarden, story: Story) -> None:
    head = row_at(mw, story.seq["head"])
    body = json.dumps({"after": {"status": "active"}, "before": None, "note": None})
    forged = {
        **head,
        "seq": head["seq"] + 1,
        "action": "promoted",
        "entity_id": str(story.b),
        "actor": "human-triage",
        "payload_digest": plain_digest(body),
        "prev_tag": head["tag"],
    }
    forged["tag"] = plain_tag(forged)
    with attacker(mw) as conn:
        insert_row(conn, forged, body)
    broken(mw, forged["seq"], "forged", "after the witnessed head", "plain SHA-256")


@pytest.mark.parametrize("source", ["another memory", "another project"])
def test_row_copied_from_another_memory_or_project(
    mw: Memwarden, story: Story, source: str
) -> None:
    """A genuine row (tag and all) of another memory is copied in, relabelled for memory a."""
    origin = story.seq["b_rejected"] if source == "another memory" else story.seq["c_promoted"]
    original = row_at(mw, origin)
    head = story.seq["head"]
    copy = {**original, "seq": head + 1, "entity_id": str(story.a), "project": "atlas"}
    with attacker(mw) as conn:
        insert_row(conn, copy, original["body"])
    broken(mw, head + 1, f"copied from {source}", f"row {origin}")


def test_copied_payload_under_a_forged_tag(mw: Memwarden, story: Story) -> None:
    original = row_at(mw, story.seq["c_promoted"])
    head = row_at(mw, story.seq["head"])
    copy = {
        **original,
        "seq": head["seq"] + 1,
        "entity_id": str(story.a),
        "project": "atlas",
        "prev_tag": head["tag"],
    }
    copy["tag"] = plain_tag(copy)
    with attacker(mw) as conn:
        insert_row(conn, copy, original["body"])
    broken(mw, head["seq"] + 1, "copied from another project", "payload digest")


def test_older_row_replayed_over_a_newer_one(mw: Memwarden, story: Story) -> None:
    """Undo the update of memory a: its newest row is replaced by a copy of an older one."""
    newest, older = story.seq["a_updated"], story.seq["a_promoted"]
    original = row_at(mw, older)
    with attacker(mw) as conn:
        delete_rows(conn, newest)
        insert_row(conn, {**original, "seq": newest}, original["body"])
        conn.execute(
            sa.update(schema.memories)
            .where(schema.memories.c.id == story.a)
            .values(content="The launch window opens in March")
        )
    broken(mw, newest, "older row was replayed over a newer one", f"repeats row {older}")


# -- short chains: truncation and rollback ------------------------------------------------------


def test_truncated_tail(mw: Memwarden, story: Story) -> None:
    head = story.seq["head"]
    with attacker(mw) as conn:
        delete_rows(conn, head - 1, head)
    broken(mw, head - 1, "truncated tail", f"ends at row {head - 2}", f"saw row {head}")


def test_tail_rewritten_after_a_cut(mw: Memwarden, story: Story) -> None:
    """The newest rows are deleted and the application appends different ones at those seqs."""
    head = story.seq["head"]
    with attacker(mw) as conn:
        delete_rows(conn, head - 1, head)
    mw.remember("atlas", "A new fact after the cut")
    mw.remember("atlas", "Another fact after the cut")
    assert head_seq(mw) == head
    broken(mw, head - 1, "rolled back and rewritten", f"from row {head - 1}")


def _copy_tables(mw: Memwarden, to_backup: bool) -> None:
    """PostgreSQL's stand-in for putting an old copy of the database back: every core table
    is copied aside, and later copied back over the live one."""
    tables = [t for t in schema.metadata.sorted_tables if t.name in CORE_TABLES]
    with attacker(mw) as conn:
        if to_backup:
            for table in tables:
                conn.exec_driver_sql(f"CREATE TABLE bak_{table.name} AS SELECT * FROM {table.name}")  # noqa: S608
            return
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in reversed(tables):
            conn.exec_driver_sql(f"DELETE FROM {table.name}")  # noqa: S608
        for table in tables:
            columns = ", ".join(column.name for column in table.columns)
            conn.exec_driver_sql(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM bak_{table.name}"  # noqa: S608
            )


CORE_TABLES = {
    "projects",
    "project_state",
    "documents",
    "source_chunks",
    "memories",
    "ledger",
    "ledger_payloads",
}


def _put_back_an_old_copy(mw: Memwarden, mutate: Any) -> Memwarden:
    """Copy the database aside, mutate, then put the old copy back. Returns it reopened."""
    settings = mw.settings
    if mw.store.is_sqlite:
        path = sqlite_path(settings.resolved_database_url)
        assert path is not None
        mw.store.dispose()  # the last connection closing checkpoints the WAL into the file
        saved = path.with_suffix(".saved")
        shutil.copyfile(path, saved)
        mutate()
        mw.close()
        for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(saved, path)
    else:
        _copy_tables(mw, to_backup=True)
        mutate()
        mw.close()
        _copy_tables(mw, to_backup=False)
    return Memwarden(settings)


def test_whole_database_rollback(
    mw: Memwarden, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = story.seq["head"]

    def more_mutations() -> None:
        mw.reinforce(story.a)
        mw.set_state("atlas", "config", "owner", "bob")
        mw.remember("borealis", "The rover has six wheels")

    old = _put_back_an_old_copy(mw, more_mutations)
    try:
        # Opening the rolled-back store shouts instead of serving silently.
        assert old.open_check is not None and not old.open_check.ok
        (fault,) = [f for f in faults.active() if f.key == opening.CHECK_FAULT]
        assert fault.severity == "critical" and "whole-database rollback" in fault.message
        broken(
            old, head + 1, "whole-database rollback", f"ends at row {head}", f"saw row {head + 3}"
        )
        # The application keeps writing past what the witness saw: the witness is never
        # advanced over the rolled-back chain, so the break stays visible.
        fast_witness(old)
        for n in range(5):
            old.remember("atlas", f"Written after the rollback, number {n}")
        assert head_seq(old) == head + 5
        assert faults.is_active(opening.DISAGREE_FAULT)
        broken(old, head + 1, "rolled back and rewritten", f"from row {head + 1}")
    finally:
        old.close()


# -- blanked payloads -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["blanked", "blanked and marked erased", "deleted"])
def test_blanked_payload_without_an_erasure(mw: Memwarden, story: Story, how: str) -> None:
    seq = story.seq["a_promoted"]
    with attacker(mw) as conn:
        if how == "deleted":
            conn.execute(sa.delete(P).where(P.c.seq == seq))
        else:
            erased_at = "2026-01-01T00:00:00.000000Z" if "erased" in how else None
            conn.execute(sa.update(P).where(P.c.seq == seq).values(body=None, erased_at=erased_at))
    word = "deleted" if how == "deleted" else "blanked"
    broken(
        mw,
        seq,
        word,
        "without a recorded erasure" if how != "blanked and marked erased" else "no later erasure",
    )


def test_blanked_payload_behind_a_forged_erasure(mw: Memwarden, story: Story) -> None:
    """A forged 'erased' row does not license blanking: only a tagged erasure does."""
    seq = story.seq["a_promoted"]
    head = row_at(mw, story.seq["head"])
    erasure = {
        **head,
        "seq": head["seq"] + 1,
        "action": "erased",
        "entity_id": str(story.a),
        "prev_tag": head["tag"],
    }
    erasure["tag"] = plain_tag(erasure)
    with attacker(mw) as conn:
        conn.execute(sa.update(P).where(P.c.seq == seq).values(body=None, erased_at=head["ts"]))
        insert_row(conn, erasure, head["body"])
    broken(mw, seq, "blanked")


def test_a_real_erasure_still_verifies(mw: Memwarden, story: Story) -> None:
    mw.erase(story.a, "privacy request")
    report = mw.verify()
    assert report.ok, report.reason


# -- the append-only triggers ------------------------------------------------------------------


def test_triggers_refuse_update_and_delete(mw: Memwarden, story: Story) -> None:
    engine = raw_engine(mw.settings)
    statements = [
        "UPDATE ledger SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM ledger WHERE seq = 2",
        "DELETE FROM ledger",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE ledger")
        statements.append("TRUNCATE ledger CASCADE")
    try:
        for statement in statements:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert head_seq(mw) == story.seq["head"]
    assert mw.verify().ok


# -- the key and the witness ----------------------------------------------------------------


def test_missing_key_is_a_clear_error(mw: Memwarden, story: Story) -> None:
    settings = mw.settings
    mw.close()
    settings.resolved_ledger_key_file.unlink()
    with pytest.raises(LedgerError, match="ledger key .* is missing: restore it from your backup"):
        Memwarden(settings)
    with pytest.raises(LedgerError, match="is missing"):
        Memwarden.init(settings)  # init never makes a new key for a ledger that has rows


def test_another_key_is_detected(mw: Memwarden, story: Story) -> None:
    settings = mw.settings
    mw.close()
    settings.resolved_ledger_key_file.write_text("ab" * 32 + "\n")
    other = Memwarden(settings)
    try:
        # Refused outright (tests/test_ledger_wrong_key.py has the whole behaviour).
        assert other.open_check is None and other.ledger.refusal is not None
        with pytest.raises(LedgerKeyMismatchError, match="wrong ledger key"):
            other.verify()
    finally:
        other.close()


def test_missing_witness_is_a_clear_error(mw: Memwarden, story: Story) -> None:
    settings = mw.settings
    witness = settings.resolved_witness_file
    witness.unlink()
    # While open: verify refuses, and a new commit does not quietly re-create the witness.
    with pytest.raises(LedgerError, match="witness .* is missing.*--anchor"):
        mw.verify()
    mw.remember("atlas", "Written while the witness is gone")
    mw.ledger.witness.close()  # type: ignore[union-attr]
    assert not witness.exists()
    mw.close()
    with pytest.raises(LedgerError, match="witness .* is missing.*reset-witness"):
        Memwarden(settings)


def test_unreadable_witness_is_a_clear_error(mw: Memwarden, story: Story) -> None:
    mw.settings.resolved_witness_file.write_text("{not json")
    with pytest.raises(LedgerError, match="unreadable"):
        mw.verify()


def test_witness_keeps_a_trail_of_recent_heads(mw: Memwarden, story: Story) -> None:
    data = json.loads(mw.settings.resolved_witness_file.read_text("utf-8"))
    assert data["seq"] == story.seq["head"]
    trail = [seq for seq, _ in data["trail"]]
    assert trail == sorted(trail) and trail[-1] == story.seq["head"] - 1
    assert mw.settings.resolved_witness_file.stat().st_mode & 0o077 == 0


# -- anchors and partial verification --------------------------------------------------------


def test_anchor_detects_what_the_witness_would(mw: Memwarden, story: Story) -> None:
    head = story.seq["head"]
    mark = mw.anchor()
    assert mark.seq == head
    assert mw.verify(anchor=mark).checked_against == ["witness", "anchor"]
    # The witness is lost and re-made at whatever the database holds: only the anchor knows.
    with attacker(mw) as conn:
        delete_rows(conn, head)
    mw.reset_witness(force=True)  # as an operator who insists, or an attacker
    assert mw.verify().ok
    broken(mw, head, "truncated tail", "anchor saw row", anchor=mark)
    broken(mw, head, "truncated tail", anchor=mark, use_witness=False)
    # Cut and rewritten at the anchored row.
    mw.remember("atlas", "Appended over the cut")
    mw.reset_witness(force=True)
    broken(mw, head, "differs from what the anchor saw", "rolled back and rewritten", anchor=mark)


def test_anchor_with_a_wrong_tag_fails(mw: Memwarden, story: Story) -> None:
    mark = mw.anchor()
    wrong = Head(mark.seq, "0" * 64)
    broken(mw, mark.seq, "anchor", anchor=wrong)
    assert mw.verify(anchor=parse_anchor(f"{mark.seq}:{mark.tag.upper()}")).ok


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12",
        "12:",
        ":" + "a" * 64,
        "x:" + "a" * 64,
        "-1:" + "a" * 64,
        "3:" + "a" * 63,
        "3:" + "g" * 64,
        "3:" + "a" * 65,
        "3 " + "a" * 64,
    ],
)
def test_malformed_anchor(text: str) -> None:
    with pytest.raises(InvalidInputError, match="malformed anchor"):
        parse_anchor(text)


def test_verify_from_a_sequence_number(mw: Memwarden, story: Story) -> None:
    head = story.seq["head"]
    start = story.seq["b_rejected"]
    report = mw.verify(from_seq=start)
    assert report.ok and report.rows_checked == head - start + 1
    assert report.head == mw.anchor()
    empty = mw.verify(from_seq=head + 1)
    assert empty.ok and empty.rows_checked == 0
    with pytest.raises(InvalidInputError, match="beyond the end of the chain"):
        mw.verify(from_seq=head + 2)
    with pytest.raises(InvalidInputError, match="1 or more"):
        mw.verify(from_seq=0)
    # Tampering before the start is out of sight, except for the row just before it.
    with attacker(mw) as conn:
        set_fields(conn, story.seq["a_created"], actor="mallory")
    assert mw.verify(from_seq=start).ok
    broken(mw, story.seq["a_created"], "was edited", from_seq=story.seq["a_created"] + 1)
    # Tampering after the start is found.
    with attacker(mw) as conn:
        set_fields(conn, story.seq["c_promoted"], actor="mallory")
    broken(mw, story.seq["c_promoted"], "was edited", from_seq=start)


def test_verify_from_beyond_a_truncated_tail_reports_the_truncation(
    mw: Memwarden, story: Story
) -> None:
    head = story.seq["head"]
    with attacker(mw) as conn:
        delete_rows(conn, head - 1, head)
    broken(mw, head - 1, "truncated tail", from_seq=head + 1)


# -- opening a tampered store ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["edited", "truncated", "payload"])
def test_opening_a_tampered_store_logs_and_alerts(mw: Memwarden, story: Story, kind: str) -> None:
    settings, head = mw.settings, story.seq["head"]
    mw.close()
    with attacker(mw) as conn:
        if kind == "edited":
            set_fields(conn, head, actor="mallory")
        elif kind == "truncated":
            delete_rows(conn, head)
        else:
            conn.execute(sa.update(P).where(P.c.seq == head).values(body="{}"))
    with structlog.testing.capture_logs() as logs:
        reopened = Memwarden(settings)
    try:
        assert reopened.open_check is not None and not reopened.open_check.ok
        assert reopened.open_check.first_bad_seq == head
        failed = [e for e in logs if e["event"] == "ledger_quick_check_failed"]
        assert failed and failed[0]["log_level"] == "critical"
        (fault,) = [f for f in faults.active() if f.key == opening.CHECK_FAULT]
        assert fault.severity == "critical" and fault.context["first_bad_seq"] == head
        # It keeps serving reads.
        assert reopened.get(story.a).id == story.a
    finally:
        reopened.close()


def test_opening_a_sound_store_is_quiet(
    mw: Memwarden, story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerts: list[Any] = []
    monkeypatch.setattr(opening, "emit_alert", lambda *a, **k: alerts.append(a))
    settings = mw.settings
    mw.close()
    with Memwarden(settings) as again:
        assert again.open_check is not None and again.open_check.ok
        assert faults.active() == []
    assert alerts == []
