"""PostgreSQL: appends on the tail this process wrote last (``audit/tail.py``).

One round trip takes the chain lock, inserts the entry only on top of the head it was tagged
after, and commits; when another writer (another process: here another ``Memwarden`` with its
own engine and ledger) moved the head meanwhile, the insert refuses, nothing of the attempt is
kept and the ordinary append reads the head in the same transaction. Afterwards: one linear
chain, one entry per acknowledged mutation, ``audit verify`` clean, the witness at the head.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger_support import head_seq, in_threads, ledger_rows, witness_file
from memwarden import Memwarden, Settings
from memwarden.audit import statements, tail, tail_script
from memwarden.audit.entries import LedgerEntry
from memwarden.db import schema


@pytest.fixture
def pg_home(tmp_path: Path, pg_schema_url: str) -> Iterator[Settings]:
    settings = Settings(home=tmp_path / "home", database_url=pg_schema_url)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
    yield settings


def _one_linear_chain(mw: Memwarden) -> list[dict[str, object]]:
    rows = ledger_rows(mw)
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1)), "a gap in the chain"
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["prev_tag"] == before["tag"], f"row {after['seq']} forks from the chain"
    return rows


def test_one_process_appends_on_its_tail_without_reading_the_head(pg_home: Settings) -> None:
    with Memwarden(pg_home) as mw:
        mw.remember("atlas", "the first append reads the head")
        tail = mw.ledger.tail
        hits = tail.hits
        for n in range(5):
            memory = mw.remember("atlas", f"fact {n}").memory
            mw.promote(memory.id)
        assert tail.hits == hits + 10 and tail.misses == 0
        rows = _one_linear_chain(mw)
        assert witness_file(mw)["seq"] == rows[-1]["seq"]
        report = mw.verify()
        assert report.ok, report.reason


def test_another_writer_moves_the_head_and_the_append_reads_it(pg_home: Settings) -> None:
    """A's tail is stale after B appended (B leaves the witness where it was, so A still
    trusts its tail and tries it): A's insert refuses, the savepoint is rolled back and the
    ordinary append chains after B's entry, in the same transaction, once."""
    with Memwarden(pg_home) as a, Memwarden(pg_home) as b:
        a.remember("atlas", "a primes its tail")
        witnessed = witness_file(a)["seq"]
        with b.store.write() as unit:
            entry = LedgerEntry("memory", "elsewhere", "atlas", "created", "test", None, {})
            b.ledger.append(unit.conn, [entry])
        assert witness_file(a)["seq"] == witnessed
        misses = a.ledger.tail.misses
        created = a.remember("atlas", "a's tail is stale now").memory
        assert a.ledger.tail.misses == misses + 1
        rows = _one_linear_chain(a)
        assert [r["entity_id"] for r in rows[-2:]] == ["elsewhere", str(created.id)]
        # After a miss this process skips the tail for a while, then comes back to it.
        hits = a.ledger.tail.hits
        for n in range(4):
            a.remember("atlas", f"after the miss {n}")
        assert a.ledger.tail.hits > hits
        _one_linear_chain(a)
        assert witness_file(a)["seq"] == head_seq(a)
        report = a.verify()
        assert report.ok, report.reason


def test_a_witness_another_ledger_moved_sends_the_append_the_ordinary_way(
    pg_home: Settings,
) -> None:
    """The witness names a head this ledger did not write: it cannot vouch for it without
    reading the chain, so it does not try its tail (no miss) and the ordinary append reads
    and checks the head."""
    with Memwarden(pg_home) as a, Memwarden(pg_home) as b:
        a.remember("atlas", "a primes its tail")
        b.remember("atlas", "b appends and moves the witness")
        hits, misses = a.ledger.tail.hits, a.ledger.tail.misses
        created = a.remember("atlas", "a reads the head").memory
        assert (a.ledger.tail.hits, a.ledger.tail.misses) == (hits, misses)
        rows = _one_linear_chain(a)
        assert rows[-1]["entity_id"] == str(created.id)
        assert witness_file(a)["seq"] == rows[-1]["seq"]


def test_writers_of_two_ledgers_at_once_keep_one_chain(pg_home: Settings) -> None:
    """Two ledgers (as two processes of ``serve --workers``), four threads each, at once:
    their tails miss each other's appends; the chain stays linear, no mutation loses or
    doubles its entry, a failed mutation among them leaves none."""
    with Memwarden(pg_home) as a, Memwarden(pg_home) as b:
        start = head_seq(a)
        barrier = threading.Barrier(9)
        done: list[int] = []
        errors: list[BaseException] = []
        caught: list[str] = []
        lock = threading.Lock()

        def writer(mw: Memwarden, index: int) -> None:
            barrier.wait()
            try:
                for unit in range(8):
                    memory = mw.remember("atlas", f"writer {index} unit {unit}").memory
                    mw.promote(memory.id)
                    with lock:
                        done.append(memory.id)
                    if unit == 3:
                        try:
                            with mw.runtime.mutation() as m:
                                m.record("memory", 9_000_000 + index, "atlas", "created", None, {})
                                m.conn.execute(  # fails in the database: the project exists
                                    sa.insert(schema.projects).values(
                                        name="atlas", created_at=m.now
                                    )
                                )
                        except sa.exc.IntegrityError:
                            with lock:
                                caught.append("database")
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(mw, i)) for i, mw in enumerate([a, b] * 4)]
        for thread in threads:
            thread.start()
        barrier.wait()
        for thread in threads:
            thread.join(timeout=300)
        if errors:
            raise errors[0]
        assert len(caught) == 8 and len(done) == 64
        rows = _one_linear_chain(a)
        written = [r for r in rows if int(str(r["seq"])) > start]
        entries: dict[str, int] = {}
        for row in written:
            entries[str(row["entity_id"])] = entries.get(str(row["entity_id"]), 0) + 1
        assert entries == {str(i): 2 for i in done}, "an entry lost, doubled or failed in"
        assert witness_file(a)["seq"] == rows[-1]["seq"]
        report = a.verify()
        assert report.ok, report.reason


def test_threads_share_flushes_and_each_returns_durable_and_witnessed(
    pg_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads of one process: the WAL flushes after their commits and the witness writes
    after those are merged (``audit.batching``), yet each call returns only once a flush *sent
    after its COMMIT was answered* has ended (on any connection: WAL is flushed in order), and
    the witness names a head at least as new as its own entry, read straight from the file.
    Flushes were shared; the chain is linear and verifies."""
    clock = time.perf_counter
    events: list[tuple[str, int, float, float]] = []  # (kind, thread, sent, answered)
    real_exec = tail.libpq_exec

    def timed_exec(conn: sa.Connection, sql: str) -> object:
        sent = clock()
        result = real_exec(conn, sql)
        answered = clock()
        kind = "flush" if sql == statements.WAL_FLUSH else "commit"
        events.append((kind, threading.get_ident(), sent, answered))
        if kind == "commit" and sql.endswith(statements.WAL_FLUSH):
            # No other appender waited: the flush ran after the COMMIT, in the same round trip.
            events.append(("flush", threading.get_ident(), answered, answered))
        return result

    monkeypatch.setattr(tail, "libpq_exec", timed_exec)
    with Memwarden(pg_home) as mw:
        mw.remember("atlas", "primes the tail")
        # (memory id, thread, when its call returned, witnessed seq then)
        seen: list[tuple[str, int, float, int]] = []
        lock = threading.Lock()

        def writer(index: int) -> None:
            for unit in range(12):
                memory = mw.remember("atlas", f"writer {index} unit {unit}").memory
                returned = clock()
                witnessed = int(witness_file(mw)["seq"])
                with lock:
                    seen.append((str(memory.id), threading.get_ident(), returned, witnessed))

        in_threads(8, writer)
        assert len(seen) == 96
        rows = _one_linear_chain(mw)
        entry_seq = {str(r["entity_id"]): int(str(r["seq"])) for r in rows}
        late = [(i, w, entry_seq[i]) for i, _, _, w in seen if w < entry_seq[i]]
        assert late == [], "a call returned before the witness reached its entry"
        flushes = [(sent, answered) for kind, _, sent, answered in events if kind == "flush"]
        for thread_id in {t for _, t, _, _ in seen}:
            commits = [
                answered for kind, t, _, answered in events if kind == "commit" and t == thread_id
            ]
            returns = sorted(r for _, t, r, _ in seen if t == thread_id)
            assert len(commits) == len(returns) == 12  # every append went on the tail
            for committed, returned in zip(commits, returns, strict=True):
                assert any(
                    committed <= sent and answered <= returned for sent, answered in flushes
                ), "a call returned without a flush sent after its commit"
        assert len(flushes) < 96 and mw.ledger.tail.flushes.served > 0, "no flush was shared"
        assert witness_file(mw)["seq"] == rows[-1]["seq"]
        report = mw.verify()
        assert report.ok, report.reason


def _statement_name(mw: Memwarden) -> str:
    with mw.store.read() as conn:
        sql, _params = tail_script.ENTRY_ON_TAIL.prepare(conn, [{}])
    return tail_script._prepared(sql).name


def _prepared_here(mw: Memwarden) -> list[tuple[str, int]]:
    """memwarden's prepared inserts on a connection of the pool: (statement, times run)."""
    with mw.store.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE starts_with(name, %(prefix)s)",
            {"prefix": tail_script.PREPARED},
        ).all()
    return [(str(row[0]), int(row[1])) for row in rows]


def _foreign(mw: Memwarden) -> str:
    """Not memwarden's statement, under the name of its prepared insert; it takes no
    parameters, so PostgreSQL runs it whatever arguments EXECUTE gives."""
    return f"PREPARE {_statement_name(mw)} AS SELECT 1"


def test_the_append_on_the_tail_runs_prepared(pg_home: Settings) -> None:
    with Memwarden(pg_home) as mw:
        for n in range(6):
            mw.remember("atlas", f"fact {n}")
        assert mw.ledger.tail.hits >= 5
        prepared = _prepared_here(mw)
        assert len(prepared) == 1 and "PREPARE memwarden_tail_append_" in prepared[0][0]
        assert prepared[0][1] >= 1, "the prepared insert was not the one run"
        _one_linear_chain(mw)
        assert mw.verify().ok


def test_a_lone_writer_flushes_in_the_commits_round_trip(
    pg_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No other appender waits for the turn: the WAL flush follows the COMMIT in the same
    round trip, and no flush of its own is sent."""
    sent: list[str] = []
    real_exec = tail.libpq_exec

    def spy(conn: sa.Connection, sql: str) -> object:
        sent.append(sql)
        return real_exec(conn, sql)

    monkeypatch.setattr(tail, "libpq_exec", spy)
    with Memwarden(pg_home) as mw:
        mw.remember("atlas", "primes the tail")
        hits = mw.ledger.tail.hits
        sent.clear()
        for n in range(5):
            mw.remember("atlas", f"fact {n}")
        assert mw.ledger.tail.hits == hits + 5
        assert len(sent) == 5 and all(
            sql.endswith(f"COMMIT; {statements.WAL_FLUSH}") for sql in sent
        )
        assert witness_file(mw)["seq"] == head_seq(mw)
        _one_linear_chain(mw)


def test_a_connection_that_lost_the_prepared_append_still_records_every_mutation(
    pg_home: Settings,
) -> None:
    """A pooler that moves the session to another server connection, or a DISCARD ALL: the
    insert finds no prepared statement, the ordinary append records the mutation, and the
    connection prepares it again before its next append on the tail."""
    with Memwarden(pg_home) as mw:
        for n in range(3):
            mw.remember("atlas", f"fact {n}")
        _deallocate(mw, _statement_name(mw))
        assert _prepared_here(mw) == []
        misses = mw.ledger.tail.misses
        before = head_seq(mw)
        for n in range(3, 80):
            mw.remember("atlas", f"fact {n}")
        assert head_seq(mw) == before + 77  # every mutation recorded
        assert mw.ledger.tail.misses > misses
        assert _prepared_here(mw), "the append was not prepared again"
        _one_linear_chain(mw)
        assert mw.verify().ok


def _deallocate(mw: Memwarden, name: str, *, foreign: str | None = None) -> None:
    """memwarden's statement gone from every pooled connection (only it: psycopg's own
    prepared statements must stay, or psycopg would lose track of them). ``foreign``: another
    statement prepared in its place on each, after memwarden had prepared its own there (so
    memwarden still takes the connection for one that holds its own)."""
    held = [mw.store.engine.connect() for _ in range(5)]
    try:
        for conn in held:
            driver = conn.connection.dbapi_connection
            assert driver is not None
            listed = driver.execute(
                "SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name]
            ).fetchone()
            if listed is not None:
                driver.execute(f"DEALLOCATE {name}")
            if foreign is not None:
                driver.execute(foreign)
                conn.connection.info[tail_script._STATE_KEY] = True
            driver.commit()
    finally:
        for conn in held:
            conn.close()


def test_another_statement_of_that_name_is_left_alone(pg_home: Settings) -> None:
    """Not memwarden's statement (put there behind its back, after memwarden prepared its own):
    its first append on that connection fails and is recorded by the ordinary append; the
    statement is then found not to be memwarden's, never replaced, and later appends on the tail
    send the insert itself."""
    with Memwarden(pg_home) as mw:
        mw.remember("atlas", "the first append reads the head")
        _deallocate(mw, _statement_name(mw), foreign=_foreign(mw))
        hits, before = mw.ledger.tail.hits, head_seq(mw)
        for n in range(60):
            mw.remember("atlas", f"fact {n}")
        assert head_seq(mw) == before + 60  # every mutation recorded
        # One miss a pooled connection at most (then it is found foreign), each followed by a
        # few ordinary appends (the back-off); then back on the tail.
        assert mw.ledger.tail.hits >= hits + 10
        assert [text for text, _runs in _prepared_here(mw)] == [_foreign(mw)]
        _one_linear_chain(mw)
        assert mw.verify().ok


def test_another_statement_of_that_name_and_a_moved_head_commit_nothing_unrecorded(
    pg_home: Settings,
) -> None:
    """The foreign statement does nothing, and another writer's row now sits at the sequence
    number this append expected: the script's check (was this entry's own row inserted, by its
    tag) fails, so nothing is committed without its entry; the ordinary
    append then records the mutation after the other writer's row."""
    with Memwarden(pg_home) as a, Memwarden(pg_home) as b:
        a.remember("atlas", "a primes its tail")
        _deallocate(a, _statement_name(a), foreign=_foreign(a))
        with b.store.write() as unit:
            entry = LedgerEntry("memory", "elsewhere", "atlas", "created", "test", None, {})
            b.ledger.append(unit.conn, [entry])
        created = a.remember("atlas", "a's tail is stale, its statement foreign").memory
        rows = _one_linear_chain(a)
        assert [r["entity_id"] for r in rows[-2:]] == ["elsewhere", str(created.id)]
        assert witness_file(a)["seq"] == rows[-1]["seq"]
        report = a.verify()
        assert report.ok, report.reason
