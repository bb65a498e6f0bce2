"""The integrity scan compares project state with its ledger. Both engines.

The row MAC catches a state entry edited in place. It did not catch one deleted in the
database, one put back whole to an older version (a copy of an earlier row carries that
version's valid MAC, so the old value was served as trusted fact), a deleted entry put back,
nor a change committed while the ledger failed: no scan compared state with its ledger (left
open since session 13). Each is made here for real and must be a critical finding, which
setting the entry again (or deleting it) ends.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog

from memwarden import Memwarden
from memwarden.audit.entries import state_entity_id
from memwarden.db import schema
from memwarden.observability.integrity.findings import Finding, IntegrityRun

S = schema.project_state
REGION = state_entity_id("atlas", "deploy", "region")


def saved_row(mw: Memwarden, key: str = "region") -> dict[str, Any]:
    with mw.store.read() as conn:
        row = conn.execute(sa.select(S).where(S.c.project == "atlas", S.c.key == key)).one()
    return dict(row._mapping)


def write_row(mw: Memwarden, row: dict[str, Any]) -> None:
    """Put a saved row back whole, as someone with the database and not the key would."""
    with mw.store.write() as unit:
        unit.conn.execute(sa.delete(S).where(S.c.id == row["id"]))
        unit.conn.execute(sa.insert(S).values(**row))


def sql(mw: Memwarden, statement: str) -> None:
    with mw.store.write() as unit:
        unit.conn.execute(sa.text(statement))


def state_findings(run: IntegrityRun) -> dict[str, Finding]:
    return {f.check: f for f in run.findings if f.check.startswith("state_gap")}


def scan(mw: Memwarden) -> IntegrityRun:
    return mw.integrity_check().run


def test_state_changed_through_memwarden_replays_clean(mw: Memwarden) -> None:
    mw.set_state("atlas", "deploy", "region", "eu-west-1", source="ops runbook")
    mw.set_state("atlas", "deploy", "region", "eu-central-1")
    mw.set_state("atlas", "deploy", "owner", "platform team")
    mw.set_state("atlas", "deploy", "zone", "b")
    mw.delete_state("atlas", "deploy", "zone")
    mw.set_state("atlas", "deploy", "zone", "c")  # set again after a delete
    mw.set_state("atlas", "quirks", "név", 'quote " and slash \\ kept')
    run = scan(mw)
    assert state_findings(run) == {}
    check = next(c for c in run.checks if c.name == "state_gaps")
    assert check.status == "ok" and check.scanned == 7


def test_a_state_entry_deleted_in_the_database_is_found(mw: Memwarden) -> None:
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    mw.set_state("atlas", "deploy", "owner", "platform team")
    sql(mw, "DELETE FROM project_state WHERE key = 'region'")
    found = state_findings(scan(mw))
    replay = found["state_gap_replay"]
    assert replay.severity == "critical" and replay.count == 1
    assert replay.examples == (REGION,)
    assert "its row is gone" in replay.message


def test_a_state_entry_put_back_to_an_older_version_is_found(mw: Memwarden) -> None:
    """The older row carries its own valid MAC: it is served as trusted, and only the replay
    can tell."""
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    old = saved_row(mw)
    mw.set_state("atlas", "deploy", "region", "us-east-2")
    write_row(mw, old)
    assert mw.get_state("atlas", "deploy", "region").value == "eu-west-1"  # the MAC holds
    replay = state_findings(scan(mw))["state_gap_replay"]
    assert replay.examples == (REGION,)
    assert "differs from its newest ledger row" in replay.message and "value" in replay.message


def test_a_deleted_state_entry_put_back_is_found(mw: Memwarden) -> None:
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    old = saved_row(mw)
    mw.delete_state("atlas", "deploy", "region")
    assert state_findings(scan(mw)) == {}
    write_row(mw, old)
    replay = state_findings(scan(mw))["state_gap_replay"]
    assert replay.examples == (REGION,) and "records its deletion" in replay.message


def test_a_state_entry_with_no_ledger_rows_is_found(mw: Memwarden) -> None:
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    copy = saved_row(mw)
    copy.pop("id")
    copy["key"] = "shadow"
    with mw.store.write() as unit:
        unit.conn.execute(sa.insert(S).values(**copy))
    found = state_findings(scan(mw))
    unrecorded = found["state_gap_unrecorded"]
    assert unrecorded.examples == (state_entity_id("atlas", "deploy", "shadow"),)
    assert "state_gap_replay" not in found


def test_a_state_change_committed_while_the_ledger_failed_is_found(mw: Memwarden) -> None:
    """Fail-open: the ledger's payload table is really gone for one write, which commits
    without its ledger row (the one alert said so); the next scan names the entry."""
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    sql(mw, "ALTER TABLE ledger_payloads RENAME TO ledger_payloads_away")
    try:
        with structlog.testing.capture_logs():
            mw.set_state("atlas", "deploy", "region", "us-east-2")
        assert mw.ledger.failures == 1
    finally:
        sql(mw, "ALTER TABLE ledger_payloads_away RENAME TO ledger_payloads")
    assert mw.get_state("atlas", "deploy", "region").value == "us-east-2"
    replay = state_findings(scan(mw))["state_gap_replay"]
    assert replay.examples == (REGION,) and "value" in replay.message
    # The remedy the finding names: set the entry again once checked.
    mw.set_state("atlas", "deploy", "region", "us-east-2")
    assert state_findings(scan(mw)) == {}


def test_the_remedies_end_a_finding(mw: Memwarden) -> None:
    """A finding names the entry as it is now: setting it again, or deleting it, through
    memwarden ends it (a review found the first version kept every such finding for good)."""
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    mw.set_state("atlas", "deploy", "owner", "platform team")
    old_region, old_owner = saved_row(mw), saved_row(mw, "owner")
    mw.set_state("atlas", "deploy", "region", "us-east-2")
    mw.delete_state("atlas", "deploy", "owner")
    write_row(mw, old_region)  # put back to an older version
    write_row(mw, old_owner)  # put back after its deletion
    assert state_findings(scan(mw))["state_gap_replay"].count == 2
    mw.set_state("atlas", "deploy", "region", "us-east-2")
    mw.delete_state("atlas", "deploy", "owner")
    assert state_findings(scan(mw)) == {}


def test_an_unreadable_payload_is_a_finding_not_a_failed_check(mw: Memwarden) -> None:
    """A payload that is not JSON, or holds no snapshot, must not stop the check: an entry
    put back meanwhile would go unreported behind "could not run every check"."""
    mw.set_state("atlas", "deploy", "region", "eu-west-1")
    old = saved_row(mw)
    mw.set_state("atlas", "deploy", "region", "us-east-2")
    mw.set_state("atlas", "deploy", "owner", "platform team")
    mw.set_state("atlas", "deploy", "zone", "b")
    write_row(mw, old)
    L, P = schema.ledger, schema.ledger_payloads
    with mw.store.write() as unit:
        for key, body in (("owner", "not json"), ("zone", "[1, 2]")):
            seq = unit.conn.execute(
                sa.select(sa.func.max(L.c.seq)).where(
                    L.c.entity_id == state_entity_id("atlas", "deploy", key)
                )
            ).scalar_one()
            unit.conn.execute(sa.update(P).where(P.c.seq == seq).values(body=body))
    run = scan(mw)
    check = next(c for c in run.checks if c.name == "state_gaps")
    assert check.status == "findings"
    replay = state_findings(run)["state_gap_replay"]
    assert set(replay.examples) == {
        REGION,
        state_entity_id("atlas", "deploy", "owner"),
        state_entity_id("atlas", "deploy", "zone"),
    }
