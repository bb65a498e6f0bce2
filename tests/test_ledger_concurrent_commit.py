"""Concurrent writers on one chain, and the commit that does not hold the chain lock through
its WAL flush (PostgreSQL, ``Ledger._flush``).

Both engines: eight threads write while another's mutations fail; afterwards one linear chain
(no fork, no gap), one entry per acknowledged mutation and none for a failed one, each failing
caller got its own error, ``audit verify`` clean and the witness at the head.

PostgreSQL: the flush after the commit is the caller's: when it fails the caller gets the
error and the witness does not move; and on a cluster of the test's own, crashed (immediate
stop: the WAL not yet written is lost) while processes write, no acknowledged write is lost
and the witness is never ahead of the chain that comes back.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from kill_writer import acknowledged_in
from ledger_support import head_seq, ledger_rows, witness_file
from memwarden import Memwarden, Settings
from memwarden.audit import statements
from memwarden.db import schema
from memwarden.errors import NotFoundError
from pg_cluster_support import available, cluster

WRITERS = 8
UNITS = 6  # per writer: create, promote, update, reinforce
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


class Boom(Exception):
    pass


def _assert_one_linear_chain(mw: Memwarden) -> list[dict[str, object]]:
    rows = ledger_rows(mw)
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1)), "a gap in the chain"
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["prev_tag"] == before["tag"], f"row {after['seq']} forks from the chain"
    assert len({row["prev_tag"] for row in rows}) == len(rows), "two rows share a parent"
    return rows


def test_concurrent_writers_and_failing_mutations_leave_one_chain(mw: Memwarden) -> None:
    start = head_seq(mw)
    barrier = threading.Barrier(WRITERS + 2)  # the writers, the failing thread, this one
    done: dict[int, list[int]] = {}
    failures: list[BaseException] = []
    caught: list[str] = []

    def writer(index: int) -> None:
        barrier.wait()
        try:
            ids = []
            for unit in range(UNITS):
                text = f"writer {index} unit {unit}"
                memory = mw.remember("atlas", text).memory
                mw.promote(memory.id)
                mw.update(memory.id, content=text + " revised")
                mw.reinforce(memory.id)
                ids.append(memory.id)
            done[index] = ids
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            failures.append(exc)

    def failing() -> None:
        """Mutations that fail at three points, among the writers: each caller gets its own
        error, and nothing of it is written."""
        barrier.wait()
        for attempt in range(UNITS):
            try:
                with mw.runtime.mutation() as m:
                    m.record("memory", 10_000_000 + attempt, "atlas", "created", None, {"n": 1})
                    raise Boom(attempt)
            except Boom:
                caught.append("boom")
            try:
                with mw.runtime.mutation() as m:
                    m.record("memory", 20_000_000 + attempt, "atlas", "created", None, {"n": 2})
                    # Fails in the database: the project exists (its primary key).
                    m.conn.execute(
                        sa.insert(schema.projects).values(name="atlas", created_at=m.now)
                    )
            except sa.exc.IntegrityError:
                caught.append("database")
            try:
                mw.promote(30_000_000 + attempt)
            except NotFoundError:
                caught.append("not found")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    threads.append(threading.Thread(target=failing))
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=300)
    if failures:
        raise failures[0]
    assert sorted(caught) == sorted(["boom", "database", "not found"] * UNITS)

    rows = _assert_one_linear_chain(mw)
    written = [row for row in rows if int(str(row["seq"])) > start]
    acknowledged = {memory_id for ids in done.values() for memory_id in ids}
    assert len(acknowledged) == WRITERS * UNITS
    # Four entries per acknowledged unit, on its own memory; none for a failed mutation.
    per_memory: dict[str, list[str]] = {}
    for row in written:
        per_memory.setdefault(str(row["entity_id"]), []).append(str(row["action"]))
    assert set(per_memory) == {str(i) for i in acknowledged}
    assert all(len(actions) == 4 for actions in per_memory.values())
    for memory_id in acknowledged:
        memory = mw.get(memory_id)
        assert memory.content.endswith(" revised") and memory.status == "active"
    report = mw.verify()
    assert report.ok, report.reason
    # Every acknowledged head reached the witness: at rest it names the chain's last row.
    assert witness_file(mw)["seq"] == rows[-1]["seq"]


def test_a_failed_flush_is_the_callers_error_and_never_witnessed(
    tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush after the commit fails (as when the connection drops there): the commit
    happened, but it was not confirmed durable, so the caller is told so, never "done", and
    the witness stays behind that entry until a later write reaches the head."""
    with Memwarden.init(Settings(home=tmp_path / "home", database_url=pg_schema_url)) as mw:
        mw.add_project("atlas")
        witnessed = witness_file(mw)["seq"]
        assert witnessed == head_seq(mw)
        monkeypatch.setattr(statements, "WAL_FLUSH", "SELECT 1 / 0")
        with pytest.raises(sa.exc.DataError, match="division by zero"):
            mw.remember("atlas", "Committed, never confirmed")
        assert witness_file(mw)["seq"] == witnessed
        assert head_seq(mw) == witnessed + 1  # the COMMIT before the flush went through
        monkeypatch.undo()
        mw.remember("atlas", "Confirmed")
        assert witness_file(mw)["seq"] == head_seq(mw) == witnessed + 2
        _assert_one_linear_chain(mw)
        report = mw.verify()
        assert report.ok, report.reason


def _writer_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["MEMWARDEN_HOME"] = str(home)
    env["MEMWARDEN_DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(HERE)])
    return env


def test_a_server_crash_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """An immediate stop discards the WAL the server had not written out: a commit that
    returned before its flush would be lost with it. Writers in three processes of three
    threads each (whose commits share WAL flushes), the server crashed under them three
    times: every write they were told was done is there, the chain is linear and verifies,
    and the witness never names a head the crash took back."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    rng = random.Random(21)
    home = tmp_path / "home"
    with cluster() as pg:
        settings = Settings(home=home, database_url=pg.url)
        with Memwarden.init(settings) as mw:
            mw.add_project("atlas")
        acknowledged: dict[int, str] = {}
        for trial in range(3):
            writers = [
                subprocess.Popen(
                    # Three threads each: their commits share flushes (audit.batching).
                    [sys.executable, str(HERE / "kill_writer.py"), f"{trial}.{n}", "3"],
                    env=_writer_env(home, pg.url),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    bufsize=0,  # see acknowledged_in: its first line is read alone
                )
                for n in range(3)
            ]
            first = []
            for writer in writers:
                assert writer.stdout is not None
                first.append(writer.stdout.readline())
            time.sleep(0.3 + rng.random() * 0.5)
            pg.crash()
            for writer, head in zip(writers, first, strict=True):
                writer.send_signal(signal.SIGKILL)
                out, _ = writer.communicate(timeout=30)
                acknowledged.update(acknowledged_in(head + out))
            pg.start()
            with Memwarden(settings) as mw:
                with mw.store.read() as conn:
                    stored = {
                        int(row.id): row.content for row in conn.execute(schema.memories.select())
                    }
                lost = [i for i, text in acknowledged.items() if stored.get(i) != text]
                assert lost == [], f"trial {trial}: {len(lost)} acknowledged writes lost"
                rows = _assert_one_linear_chain(mw)
                assert witness_file(mw)["seq"] <= rows[-1]["seq"], "the witness is ahead"
                # Rows a killed writer committed but never acknowledged may sit past the
                # witness (docs/ledger.md); the next write catches it up.
                mw.set_state("atlas", "crash", "trial", str(trial))
                report = mw.verify()
                assert report.ok, f"trial {trial}: {report.reason}"
        assert len(acknowledged) > 30, "the writers hardly wrote before the crashes"


def test_a_role_that_may_not_flush_keeps_the_lock_through_the_commit(tmp_path: Path) -> None:
    """Where ``pg_logical_emit_message`` was revoked, the flush after the commit would fail
    every caller of a mutation that did commit: such a role commits as before instead."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    with cluster() as pg:
        admin = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE ROLE writer LOGIN")
            conn.exec_driver_sql("CREATE DATABASE writes OWNER writer")
        admin.dispose()
        database = pg.url.rsplit("/", 1)[0] + "/writes"
        admin = sa.create_engine(database, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # functions' privileges are the database's own
            conn.exec_driver_sql(
                "REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) "
                "FROM PUBLIC"
            )
        admin.dispose()
        url = database.replace("postgres@", "writer@")
        with Memwarden.init(Settings(home=tmp_path / "home", database_url=url)) as mw:
            mw.add_project("atlas")
            memory = mw.remember("atlas", "Written by a role that may not flush").memory
            assert mw.ledger._flush_allowed is False
            assert mw.get(memory.id).content == "Written by a role that may not flush"
            rows = _assert_one_linear_chain(mw)
            assert witness_file(mw)["seq"] == rows[-1]["seq"]
            assert mw.verify().ok
