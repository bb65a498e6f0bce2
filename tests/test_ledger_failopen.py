"""Atomic when healthy, fail-open when the ledger itself fails, refused in strict mode.

Both engines. The failures are real: a hook that raises after the ledger rows are written
(inside the same transaction), and a ledger table that is really gone."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from core_support import db_state
from ledger_support import fast_witness, head_seq, ledger_rows, witness_file
from memwarden import Memwarden, Settings
from memwarden.audit.actor import acting_as
from memwarden.audit.entries import LedgerEntry
from memwarden.core import opening
from memwarden.db import schema
from memwarden.db.store import WriteUnit
from memwarden.errors import LedgerError


class Boom(Exception):
    pass


def test_row_and_entry_commit_together(mw: Memwarden) -> None:
    before = head_seq(mw)
    with acting_as("tester"):
        memory = mw.remember("atlas", "The launch window opens in March").memory
    rows = ledger_rows(mw)
    assert head_seq(mw) == before + 1
    assert rows[-1]["entity_id"] == str(memory.id) and rows[-1]["actor"] == "tester"
    assert mw.get(memory.id).status == "candidate"


def test_a_failure_after_the_ledger_write_rolls_back_both(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "The launch window opens in March").memory
    before = db_state(mw)
    seen_inside: list[int] = []
    attach = mw.ledger.attach

    def attach_then_fail(unit: WriteUnit) -> Any:
        buffer = attach(unit)

        def fail_after_the_ledger(conn: sa.Connection) -> None:
            # The ledger has appended inside this transaction; now the commit path fails.
            seen_inside.append(
                int(conn.execute(sa.select(sa.func.max(schema.ledger.c.seq))).scalar_one())
            )
            raise Boom("the commit path failed after the ledger write")

        unit.before_commit.append(fail_after_the_ledger)
        return buffer

    mw.ledger.attach = attach_then_fail  # type: ignore[method-assign]
    try:
        with pytest.raises(Boom):
            mw.promote(memory.id)
    finally:
        mw.ledger.attach = attach  # type: ignore[method-assign]
    assert seen_inside == [head_seq(mw) + 1], "the ledger row was written in the transaction"
    assert db_state(mw) == before, "the memory row or the ledger row survived a rollback"
    assert mw.get(memory.id).status == "candidate"
    assert mw.verify().ok


def _drop_ledger(mw: Memwarden) -> None:
    with mw.store.engine.begin() as conn:
        cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"DROP TABLE ledger{cascade}")


def test_ledger_gone_the_mutation_still_commits(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_witness(mw)
    memory = mw.remember("atlas", "The launch window opens in March").memory
    witnessed = witness_file(mw)["seq"]
    alerts: list[tuple[str, str, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        opening, "emit_alert", lambda s, t, m, c=None: alerts.append((s, t, m, c or {}))
    )
    hooked: list[tuple[str, list[LedgerEntry]]] = []
    mw.ledger.failure_hooks.append(
        lambda exc, entries: hooked.append((type(exc).__name__, entries))
    )
    _drop_ledger(mw)
    with structlog.testing.capture_logs() as logs, acting_as("tester"):
        promoted = mw.promote(memory.id, note="still goes through")
    assert promoted.status == "active"
    assert mw.get(memory.id).status == "active", "the mutation must commit"
    assert mw.ledger.failures == 1
    assert len(hooked) == 1 and hooked[0][1][0].action == "promoted"
    assert hooked[0][1][0].actor == "tester"
    failed = [e for e in logs if e["event"] == "ledger_write_failed"]
    assert failed and failed[0]["entries"] == [("memory", str(memory.id), "promoted", "tester")]
    assert failed[0]["log_level"] == "error"
    assert [(a[0], a[1]) for a in alerts] == [("critical", "Ledger write failed")]
    assert "committed without its audit row" in alerts[0][2]
    assert alerts[0][3]["entity"] == f"memory {memory.id}"
    # No payload row was left behind and the witness did not move.
    with mw.store.read() as conn:
        payloads = conn.execute(sa.select(sa.func.count()).select_from(schema.ledger_payloads))
        assert payloads.scalar_one() == witnessed
    assert witness_file(mw)["seq"] == witnessed
    # A failing alert sink never breaks the mutation either.
    mw.ledger.failure_hooks.insert(
        0, lambda exc, entries: (_ for _ in ()).throw(RuntimeError("sink down"))
    )
    assert mw.reinforce(memory.id).reinforcement_count == 1
    assert mw.ledger.failures == 2 and len(hooked) == 2


def test_strict_mode_refuses_the_mutation(settings: Settings) -> None:
    Memwarden.init(settings).close()
    strict = Memwarden(settings.model_copy(update={"ledger_strict": True}))
    try:
        strict.add_project("atlas")
        memory = strict.remember("atlas", "The launch window opens in March").memory
        hooked: list[str] = []
        strict.ledger.failure_hooks.append(lambda exc, entries: hooked.append(entries[0].action))
        _drop_ledger(strict)
        before = db_state_without_ledger(strict)
        with pytest.raises(LedgerError, match="strict mode is on: refused"):
            strict.promote(memory.id)
        assert db_state_without_ledger(strict) == before, "a refused mutation changed the database"
        assert strict.get(memory.id).status == "candidate"
        assert strict.ledger.failures == 1 and hooked == ["promoted"]
        with pytest.raises(LedgerError):
            strict.remember("atlas", "Something new")
        assert [m.content for m in strict.list_memories()] == [memory.content]
    finally:
        strict.close()


def test_strict_mode_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMWARDEN_LEDGER_STRICT", "1")
    from_env = Settings(home=settings.home, database_url=settings.database_url)
    assert from_env.ledger_strict is True
    with Memwarden.init(from_env) as mw:
        assert mw.ledger.strict is True
        mw.add_project("atlas")
        assert head_seq(mw) == 1  # healthy: strict mode records as usual


def db_state_without_ledger(mw: Memwarden) -> dict[str, list[tuple[Any, ...]]]:
    state: dict[str, list[tuple[Any, ...]]] = {}
    with mw.store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if table.name == "ledger" or table.name not in CORE:
                continue
            order = list(table.primary_key.columns)
            state[table.name] = [
                tuple(r) for r in conn.execute(sa.select(*table.columns).order_by(*order))
            ]
    return state


CORE = {"projects", "project_state", "documents", "source_chunks", "memories", "ledger_payloads"}


def test_entry_insert_failing_after_the_head_read_still_commits(mw: Memwarden) -> None:
    """The head is read (the chain lock held, the next head written beside the witness), then
    the entry's insert fails. On PostgreSQL that insert goes with the COMMIT in one round
    trip: the failed statement must leave the mutation to commit without its entry, and the
    prepared head must never reach the witness."""
    memory = mw.remember("atlas", "The launch window opens in March").memory
    witnessed = witness_file(mw)["seq"]
    chained = head_seq(mw)
    with mw.store.engine.begin() as conn:
        cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"DROP TABLE ledger_payloads{cascade}")
    with structlog.testing.capture_logs():
        promoted = mw.promote(memory.id, note="still goes through")
    assert promoted.status == "active"
    assert mw.get(memory.id).status == "active", "the mutation must commit"
    assert mw.ledger.failures == 1
    assert head_seq(mw) == chained, "the entry's row outlived its failed insert"
    assert witness_file(mw)["seq"] == witnessed
