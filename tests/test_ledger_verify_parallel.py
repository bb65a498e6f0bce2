"""Verifying on several worker processes gives exactly the serial walk's answer (same first
bad row, same reason, same count), and the walk's fast header never accepts a row that its
canonical header would refuse. Both engines."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import structlog

from conftest import raw_engine
from ledger_support import (
    attacker,
    delete_rows,
    fast_witness,
    head_seq,
    row_at,
    set_fields,
    whole_chain_job,
)
from memwarden import VERIFY_WORKER_OPTION, Memwarden, Settings
from memwarden.audit import parallel, verify_worker
from memwarden.audit.actor import acting_as
from memwarden.audit.verify import VerifyReport, verify
from memwarden.audit.walk import Walk
from memwarden.db import schema

WORKERS = 3
# Actors (printable, as every actor is) a JSON encoder must escape, and non-ASCII ones.
AWKWARD_ACTORS = ['ana "the admin"', "back\\slash", "zoë ✓", "plain"]


@pytest.fixture
def chain(mw: Memwarden, monkeypatch: pytest.MonkeyPatch) -> Memwarden:
    """About 60 rows, some by awkward actors; parallel walks allowed at any length."""
    monkeypatch.setattr(parallel, "MIN_ROWS", 1)
    fast_witness(mw)  # the witness at the head before any tampering: both walks see the same marks
    for index in range(20):
        with acting_as(AWKWARD_ACTORS[index % len(AWKWARD_ACTORS)]):
            memory = mw.remember("atlas", f"Fact number {index} about the launch").memory
            mw.promote(memory.id)
            mw.reinforce(memory.id)
    assert mw.ledger.witness is not None
    mw.ledger.witness.flush()
    return mw


def verify_with(
    mw: Memwarden, workers: int, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    mw.settings = mw.settings.model_copy(update={"verify_workers": workers})
    return mw.verify(progress=progress)


def same_answer(mw: Memwarden) -> VerifyReport:
    serial = verify_with(mw, 1)
    split = verify_with(mw, WORKERS)
    assert (split.ok, split.first_bad_seq, split.reason, split.rows_checked) == (
        serial.ok,
        serial.first_bad_seq,
        serial.reason,
        serial.rows_checked,
    )
    assert split.head == serial.head
    return split


def test_a_sound_chain_verifies_on_workers(chain: Memwarden) -> None:
    seen: list[int] = []
    report = verify_with(chain, WORKERS, seen.append)
    assert report.ok, report.reason
    assert report.rows_checked == head_seq(chain)
    assert seen and seen == sorted(seen) and seen[-1] == report.rows_checked
    assert same_answer(chain).ok


def test_awkward_actors_verify_and_are_kept_exactly(chain: Memwarden) -> None:
    assert verify_with(chain, 1).ok
    actors = (
        {row.actor for row in chain.recent_audit(limit=500)}
        if hasattr(chain, "recent_audit")
        else None
    )
    with chain.store.read() as conn:
        stored = set(conn.execute(sa.select(schema.ledger.c.actor)).scalars())
    assert set(AWKWARD_ACTORS) <= stored
    assert actors is None or set(AWKWARD_ACTORS) <= actors


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_an_edited_payload_is_named_the_same_way(chain: Memwarden, where: str) -> None:
    head = head_seq(chain)
    seq = {"first": 2, "middle": head // 2, "last": head}[where]
    with attacker(chain) as conn:
        conn.execute(
            sa.update(schema.ledger_payloads)
            .where(schema.ledger_payloads.c.seq == seq)
            .values(body='{"after":null,"before":null,"note":"rewritten"}')
        )
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq
    assert report.reason is not None and "payload was edited" in report.reason


def test_a_row_deleted_at_a_part_boundary_is_named_the_same_way(chain: Memwarden) -> None:
    parts = parallel.plan(1, head_seq(chain), WORKERS)
    seq = parts[1].first  # the first row of the second part
    with attacker(chain) as conn:
        delete_rows(conn, seq)
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq
    assert report.reason is not None and "missing" in report.reason


def test_the_last_row_of_a_part_deleted(chain: Memwarden) -> None:
    parts = parallel.plan(1, head_seq(chain), WORKERS)
    seq = parts[0].last
    with attacker(chain) as conn:
        delete_rows(conn, seq)
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq


def test_an_edited_actor_is_named_the_same_way(chain: Memwarden) -> None:
    seq = head_seq(chain) - 3
    with attacker(chain) as conn:
        set_fields(conn, seq, actor="mallory")
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq


def test_an_escape_written_out_by_hand_is_not_the_character_it_stands_for(
    chain: Memwarden,
) -> None:
    """The canonical header of actor `ana "the admin"` holds `ana \\"the admin\\"`. An attacker
    who stores that escaped text itself as the actor must not pass for the original."""
    seq = next(
        s for s in range(1, head_seq(chain) + 1) if row_at(chain, s)["actor"] == AWKWARD_ACTORS[0]
    )
    with attacker(chain) as conn:
        set_fields(conn, seq, actor='ana \\"the admin\\"')
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq


def test_a_doubled_backslash_is_not_the_one_it_escapes(chain: Memwarden) -> None:
    seq = next(
        s for s in range(1, head_seq(chain) + 1) if row_at(chain, s)["actor"] == "back\\slash"
    )
    with attacker(chain) as conn:
        set_fields(conn, seq, actor="back\\\\slash")
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq


def test_the_row_before_from_edited_is_named_on_workers_too(chain: Memwarden) -> None:
    """A worker checks the tag of the row before its part, which links the part in: inside
    the chain the part before checks that row as well, but before ``--from`` nothing else
    does. The row after it is one the fast path takes (a plain actor), so the worker's own
    check is what must catch it."""
    head = head_seq(chain)
    seq = next(
        s for s in range(head // 2, head) if row_at(chain, s + 1)["actor"] in ("plain", "zoë ✓")
    )
    with attacker(chain) as conn:
        set_fields(conn, seq, action="rejected")
    serial = verify_from(chain, seq + 1)
    chain.settings = chain.settings.model_copy(update={"verify_workers": WORKERS})
    split = chain.verify(from_seq=seq + 1)
    assert not serial.ok and serial.first_bad_seq == seq
    assert (split.ok, split.first_bad_seq, split.reason) == (False, seq, serial.reason)


def test_erased_payloads_are_accepted_by_workers_as_by_the_walk(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An erased payload is blank: the fast path does not accept its row, and a worker hands
    the rest of its part to the full walk, which accepts it as a lawful erasure."""
    with chain.store.read() as conn:
        ids = sorted(conn.execute(sa.select(schema.memories.c.id)).scalars())
    for memory_id in (ids[1], ids[len(ids) // 2], ids[-2]):
        chain.erase(memory_id, "personal data", wait=30)
    with chain.store.read() as conn:
        blank = conn.execute(
            sa.select(sa.func.count()).where(schema.ledger_payloads.c.erased_at.is_not(None))
        ).scalar_one()
    assert blank >= 9  # each memory's created, promoted and reinforced rows
    assert verify_with(chain, 1).ok
    # The workers' word is taken: this process walks nothing again (a part that failed
    # would be walked again here, and the answer would be right for the wrong reason).
    walked_here: list[int] = []
    real_run = Walk.run

    def run_here(self: Walk, from_seq: int, *args: Any, **kwargs: Any) -> Any:
        walked_here.append(from_seq)
        return real_run(self, from_seq, *args, **kwargs)

    monkeypatch.setattr(Walk, "run", run_here)
    report = verify_with(chain, WORKERS)
    assert report.ok and report.rows_checked == head_seq(chain), report.reason
    assert walked_here == []


def test_a_worker_loads_only_the_fast_path() -> None:
    """A worker's start is part of every parallel verify: it must not load the schema, the
    diagnosis or the PostgreSQL driver until a row needs them, nor (started as the parent
    starts it) SQLAlchemy or structlog, which a SQLite worker's fast path does without."""
    probe = (
        "import sys, memwarden.audit.verify_worker; "
        "print(sorted(m for m in sys.modules if m in {'psycopg', 'memwarden.db.schema', "
        "'memwarden.audit.diagnose', 'memwarden.audit.walk', 'memwarden.config', "
        "'sqlalchemy', 'structlog'}))"
    )
    shown = subprocess.run(
        [sys.executable, "-X", VERIFY_WORKER_OPTION, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == "[]"


def test_a_workers_full_walk_reads_its_parts_snapshot(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker walks its part in one read transaction, the full walk included: it is handed
    the worker's own connection, still inside the transaction the fast path read in
    (SQLAlchemy's first look at a new connection, which ends with a rollback, happens on
    another). Run here, in this process, so the walk can be watched."""
    with chain.store.read() as conn:
        first_id = conn.execute(sa.select(sa.func.min(schema.memories.c.id))).scalar_one()
    chain.erase(first_id, "personal data", wait=30)  # a blank payload: the fast path hands over
    in_transaction: list[bool] = []
    real_run = Walk.run

    def run_here(self: Walk, from_seq: int, *args: Any, **kwargs: Any) -> Any:
        in_transaction.append(_in_transaction(self.conn.connection.dbapi_connection))
        return real_run(self, from_seq, *args, **kwargs)

    monkeypatch.setattr(Walk, "run", run_here)
    head = head_seq(chain)
    job = whole_chain_job(chain)
    outcome = verify_worker.walk_job(job, lambda _checked: None)
    assert outcome.checked == head and outcome.last_tag == row_at(chain, head)["tag"]
    assert in_transaction == [True]


def _in_transaction(driver: Any) -> bool:
    """In a transaction, and on PostgreSQL one that reads a single snapshot throughout."""
    if isinstance(driver, psycopg.Connection):
        if driver.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            return False
        level = driver.execute("SHOW transaction_isolation").fetchone()
        return level is not None and level[0] == "repeatable read"
    return bool(driver.in_transaction)


def test_workers_that_cannot_start_leave_the_walk_to_this_process(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with structlog.testing.capture_logs() as logs:
        report = verify_with(chain, WORKERS)
    assert report.ok and report.rows_checked == head_seq(chain)
    assert any(entry["event"] == "verify_workers_failed" for entry in logs)


def test_a_job_that_cannot_be_sent_leaves_the_walk_to_this_process(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection argument that does not pickle (SQLAlchemy's own psycopg adapters did)
    starts no worker and is no traceback: the walk runs here, and the log says why."""
    real = parallel.driver_open

    def unpicklable(conn: sa.Connection) -> verify_worker.DriverOpen:
        opened = real(conn)
        return dataclasses.replace(opened, kwargs={**opened.kwargs, "context": lambda: None})

    monkeypatch.setattr(parallel, "driver_open", unpicklable)
    with structlog.testing.capture_logs() as logs:
        report = verify_with(chain, WORKERS)
    assert report.ok and report.rows_checked == head_seq(chain)
    failed = [entry for entry in logs if entry["event"] == "verify_workers_failed"]
    assert failed and "cannot be sent" in failed[0]["error"]


def test_short_chains_and_one_worker_stay_in_process(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("no worker should start")

    monkeypatch.setattr(parallel, "_run_workers", refuse)
    assert verify_with(chain, 1).ok
    monkeypatch.setattr(parallel, "MIN_ROWS", head_seq(chain) + 1)
    assert verify_with(chain, WORKERS).ok


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_every_part_reads_the_snapshot_the_walk_was_planned_on(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the workers import the parent's exported snapshot: an edit committed
    after the parts were planned is in no part's view (each part reading its own, newer
    snapshot, some parts would see it and others not). The next verify names it."""
    seq = head_seq(chain) - 1  # in the last part, read last
    real = parallel._run_workers
    snapshots: list[str | None] = []

    def edit_then_run(*args: Any, **kwargs: Any) -> list[parallel.PartResult]:
        snapshots.append(args[5] if len(args) > 5 else kwargs.get("snapshot"))
        # Not ``attacker``: dropping the ledger's trigger would wait for the walk's own
        # transaction to end (the payloads have no trigger to drop).
        engine = raw_engine(chain.settings)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(schema.ledger_payloads)
                    .where(schema.ledger_payloads.c.seq == seq)
                    .values(body='{"after":null,"before":null,"note":"rewritten"}')
                )
        finally:
            engine.dispose()
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel, "_run_workers", edit_then_run)
    report = verify_with(chain, WORKERS)
    assert snapshots and snapshots[0], "no snapshot was handed to the workers"
    assert report.ok and report.rows_checked == head_seq(chain), report.reason
    monkeypatch.setattr(parallel, "_run_workers", real)
    again = verify_with(chain, WORKERS)
    assert not again.ok and again.first_bad_seq == seq


def test_workers_verify_inside_a_savepoint(chain: Memwarden) -> None:
    """An integrity scan runs verify inside a savepoint, where PostgreSQL exports no
    snapshot: the workers then read their own, and the walk still runs on them."""
    assert chain.ledger.witness is not None
    with chain.store.read() as conn, conn.begin_nested():
        report = verify(
            conn,
            chain.ledger.key,
            witness=chain.ledger.witness.read(),
            database_id=chain.database_id,
            workers=WORKERS,
        )
    assert report.ok and report.rows_checked == head_seq(chain), report.reason


def test_plan_covers_every_row_once() -> None:
    for first, end, workers in [(1, 10, 3), (5, 5, 4), (1, 1_000_003, 4), (7, 20, 2)]:
        parts = parallel.plan(first, end, workers)
        covered = [seq for part in parts for seq in range(part.first, part.last + 1)]
        assert covered == list(range(first, end + 1))
        assert len(parts) <= workers


def test_a_field_rewritten_as_a_blob_of_its_own_bytes_is_refused(chain: Memwarden) -> None:
    """The bytes hash alike, but a BLOB no longer equals the text in a query: the row would
    drop out of its memory's history while the chain still verified."""
    if chain.store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps a text column text")
    seq = head_seq(chain) - 5
    with attacker(chain) as conn:
        conn.exec_driver_sql(
            "UPDATE ledger SET entity_id = CAST(entity_id AS BLOB) WHERE seq = ?", (seq,)
        )
    report = same_answer(chain)
    assert not report.ok and report.first_bad_seq == seq
    assert report.reason is not None and "other than text" in report.reason
    assert not verify_from(chain, seq + 1).ok  # the row before --from is checked the same way


def verify_from(mw: Memwarden, from_seq: int) -> VerifyReport:
    mw.settings = mw.settings.model_copy(update={"verify_workers": 1})
    return mw.verify(from_seq=from_seq)


def test_bytes_that_are_not_utf8_do_not_pass_for_a_replacement_character(
    mw: Memwarden,
) -> None:
    if mw.store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses bytes that are not UTF-8")
    with acting_as("bob\ufffd"):
        mw.remember("atlas", "Tagged by an actor whose name holds U+FFFD")
    seq = head_seq(mw)
    assert mw.verify().ok
    with attacker(mw) as conn:
        conn.exec_driver_sql(
            "UPDATE ledger SET actor = CAST(X'626f62ff' AS TEXT) WHERE seq = ?", (seq,)
        )
    report = mw.verify()
    assert not report.ok and report.first_bad_seq == seq


def test_a_client_encoding_other_than_utf8_verifies_the_same(mw: Memwarden) -> None:
    if mw.store.engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL connection setting")
    with acting_as("zoë"):
        mw.remember("atlas", "Le café est servi à midi")
    assert mw.verify().ok
    url = mw.settings.resolved_database_url
    latin1 = url + ("&" if "?" in url else "?") + "client_encoding=latin1"
    with Memwarden(mw.settings.model_copy(update={"database_url": latin1})) as other:
        with other.store.read() as conn:
            encoding = conn.exec_driver_sql("SHOW client_encoding").scalar_one()
        assert str(encoding).upper() == "LATIN1"
        report = other.verify()
    assert report.ok, report.reason


@pytest.mark.parametrize(
    "script", ["echo 'progress über'", "echo 'done twelve'", "echo 'hello'", "sleep 30"]
)
def test_workers_that_misbehave_leave_the_walk_to_this_process(
    chain: Memwarden, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str
) -> None:
    fake = tmp_path / "python3"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    monkeypatch.setattr(parallel, "WORKER_SILENCE_S", 1.0)
    with structlog.testing.capture_logs() as logs:
        report = verify_with(chain, WORKERS)
    assert report.ok and report.rows_checked == head_seq(chain)
    assert any(entry["event"] == "verify_workers_failed" for entry in logs)


@pytest.mark.parametrize(
    ("url", "cores", "expected"),
    [
        ("sqlite:///store.db", 2, 2),
        ("postgresql+psycopg://root@127.0.0.1:5432/test", 2, 2),
        ("postgresql+psycopg://root@/test?host=/var/run/postgresql", 4, 4),
        ("postgresql+psycopg://root@db.internal:5432/test", 8, 4),
        ("sqlite:///store.db", 1, 1),
    ],
)
def test_the_default_workers_are_one_per_core_up_to_four(
    url: str, cores: int, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker per core, at most four, whatever the engine and wherever its server runs
    (a server on this machine included: docs/scaling.md, session 12). Set explicitly, the
    number is kept."""
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    settings = Settings(home=tmp_path, database_url=url)
    assert settings.resolved_verify_workers == expected
    assert settings.model_copy(update={"verify_workers": 3}).resolved_verify_workers == 3
