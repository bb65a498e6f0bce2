"""Migration 0010_row_macs on both engines: down and up again over a store with rows; the
upgrade gives a MAC only to rows that match their ledger replay, so a row edited while the
store stood without MACs is not blessed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import migrate, schema
from memwarden.db.store import Store
from memwarden.errors import TamperedRowError
from memwarden.observability.faults import faults


def columns(store: Store, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(store.engine).get_columns(table)}


def test_downgrade_then_upgrade_blesses_only_rows_that_match_their_ledger(
    settings: Settings,
) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        kept = mw.remember("atlas", "The launch window opens in March", status="active").memory
        edited = mw.remember("atlas", "The crew is four people", status="active").memory
        mw.reinforce(kept.id)
        mw.supersede(kept.id, content="The launch window opens in April")
        mw.set_state("atlas", "schedule", "launch", "April 2027")
        mw.set_state("atlas", "schedule", "crew", "four")
    store = Store(settings)
    try:
        for table in (schema.memories, schema.project_state):  # as schema.py declares them
            declared = {c.name for c in table.columns}
            assert columns(store, table.name) - {"content_tsv"} == declared  # tsv: PostgreSQL
        migrate.downgrade(store, "0010_row_macs@-1")  # only this branch goes
        assert "0010_row_macs" not in migrate.current_revisions(store)
        assert "mac" not in columns(store, "memories") | columns(store, "project_state")
        with store.write() as unit:  # edits made while the store has no MACs
            unit.conn.execute(
                sa.text("UPDATE memories SET content = 'The crew is nine' WHERE id = :i"),
                {"i": edited.id},
            )
            unit.conn.execute(sa.text("UPDATE project_state SET value = 'nine' WHERE key = 'crew'"))
        migrate.upgrade(store)
        assert migrate.current_revisions(store) == migrate.head_revisions()
        with store.read() as conn:
            macs = dict(conn.execute(sa.text("SELECT id, mac FROM memories")).all())
            state = dict(conn.execute(sa.text('SELECT "key", mac FROM project_state')).all())
        assert macs[edited.id] is None and state["crew"] is None  # not blessed
        assert all(mac for memory_id, mac in macs.items() if memory_id != edited.id)
        assert state["launch"]
    finally:
        store.dispose()
    faults.reset()
    with Memwarden(settings) as mw:
        assert mw.get(kept.id).status == "superseded"
        assert "The launch window opens in April" in [h.content for h in mw.recall("launch")]
        assert mw.get_state("atlas", "schedule", "launch").value == "April 2027"
        with pytest.raises(TamperedRowError):
            mw.get(edited.id)
        with pytest.raises(TamperedRowError):
            mw.get_state("atlas", "schedule", "crew")
        report = mw.integrity_check(fix=True)
        restored = sorted(r.check for r in report.repairs if r.check.startswith("tampered"))
        assert restored == ["tampered_memories", "tampered_state"]
        assert mw.get(edited.id).content == "The crew is four people"
        assert mw.get_state("atlas", "schedule", "crew").value == "four"
    faults.reset()
