"""Audit records lost in the background are a fault an operator sees, not a log line alone:
the read records (who was served which memory) and the operation log, each refused for real
by the database (a trigger that raises, as a policy or a broken migration would), on both
engines. The operations themselves still succeed; the fault ends when a write of that log
succeeds again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core_support import inserts_refused
from memwarden import Memwarden
from memwarden.api import create_app
from memwarden.core import record_loss
from memwarden.observability.faults import active_faults

LOOPBACK = "http://127.0.0.1"


def _keys() -> list[str]:
    return [fault.key for fault in active_faults()]


def _titled(mw: Memwarden, title: str) -> list[str]:
    mw.alerts.flush()
    return [a.severity for a in mw.alerts.history(limit=200) if a.title == title]


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_read_records_refused_by_the_database_are_a_fault_until_one_is_written(
    mw: Memwarden,
) -> None:
    memory = mw.remember("atlas", "the pad's water deluge starts at T-16 s", status="active")
    mw.get(memory.memory.id)
    assert mw.reads.flush(10)
    assert len(mw.readers(memory.memory.id)) == 1
    with inserts_refused(mw, "memory_reads"):
        for _ in range(3):
            assert mw.get(memory.memory.id).content  # the reader is answered all the same
            assert mw.reads.flush(10)
        assert mw.reads.failed == 3
        assert record_loss.READS_FAULT in _keys()
        fault = next(f for f in active_faults() if f.key == record_loss.READS_FAULT)
        assert "3 lost so far" in fault.message and "refused by the test policy" in fault.message
        with TestClient(create_app(mw.settings, memwarden=mw), base_url=LOOPBACK) as client:
            health = client.get("/health").json()
            assert health["status"] == "degraded"
            assert record_loss.READS_FAULT in [f["key"] for f in health["faults"]]
    assert _titled(mw, "Read records are being lost") == ["critical"]  # once per episode
    mw.get(memory.memory.id)
    assert mw.reads.flush(10)
    assert record_loss.READS_FAULT not in _keys()  # a record written again ends it
    assert len(mw.readers(memory.memory.id)) == 2  # the one before, the one after


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_operation_log_rows_refused_by_the_database_are_a_fault_until_one_is_written(
    mw: Memwarden,
) -> None:
    mw.oplog.actions, mw.oplog.all_actions = frozenset(), True
    with inserts_refused(mw, "operation_log"):
        for n in range(3):
            assert mw.remember("atlas", f"fact {n} about the deluge valves").memory.id > 0
            assert mw.oplog.flush(10)
        assert mw.oplog.failed_rows >= 3
        assert record_loss.OPLOG_FAULT in _keys()
    assert _titled(mw, "Operation log records are being lost") == ["critical"]
    mw.list_projects()
    assert mw.oplog.flush(10)
    assert record_loss.OPLOG_FAULT not in _keys()
    with mw.store.read() as conn:
        logged = conn.execute(sa.text("SELECT count(*) FROM operation_log")).scalar_one()
    assert logged >= 1


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_the_fault_ends_when_a_reopened_memwarden_writes_its_records(mw: Memwarden) -> None:
    """The episode belonged to the log that met it: a memwarden reopened in the same process
    (an app restarted) wrote its records again, and /health stayed degraded for good."""
    memory = mw.remember("atlas", "the pad's water deluge starts at T-16 s", status="active")
    with inserts_refused(mw, "memory_reads"):
        mw.get(memory.memory.id)
        assert mw.reads.flush(10)
        assert record_loss.READS_FAULT in _keys()
    with Memwarden(mw.settings) as reopened:
        reopened.get(memory.memory.id)
        assert reopened.reads.flush(10)
        assert record_loss.READS_FAULT not in _keys()
