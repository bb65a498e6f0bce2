"""The engine's own checks (SQLite quick_check / integrity_check and foreign_key_check;
PostgreSQL amcheck or a recorded skip), and a check that cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from integrity_support import counts, finding, raw
from memwarden import Memwarden, Settings
from memwarden.db import schema


def _check(mw_report: object, name: str) -> object:
    return next(c for c in mw_report.checks if c.name == name)  # type: ignore[attr-defined]


def test_a_damaged_sqlite_page_is_critical(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Launch in March")
        with mw.store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            root = conn.execute(
                sa.text(
                    "SELECT rootpage FROM sqlite_master WHERE name = 'ix_operation_log_project'"
                )
            ).scalar_one()
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    with (settings.home / "memwarden.db").open("r+b") as db_file:
        db_file.seek((root - 1) * page_size)
        db_file.write(b"\xff" * 64)  # the header of an index page nobody reads on the way
    with Memwarden(settings) as mw:
        report = mw.integrity_check()
        found = finding(report, "sqlite_quick_check")
        assert (found.severity, found.count) == ("critical", 1)
        assert counts(report) == {"sqlite_quick_check": 1}
        full = mw.integrity_check(full=True)
        assert counts(full) == {"sqlite_integrity_check": 1}
        assert mw.integrity_check(fix=True).repairs == []


def test_sqlite_foreign_keys_beyond_the_relational_checks(tmp_path: Path) -> None:
    with Memwarden.init(Settings(home=tmp_path / "home")) as mw:
        mw.add_project("atlas")
        memory = mw.remember("atlas", "Launch in March").memory
        with raw(mw) as conn:
            conn.execute(
                sa.insert(schema.memory_origins).values(
                    memory_id=memory.id,
                    interaction_id=4242,
                    extractor="rules",
                    extractor_version="1",
                    created_at=memory.created_at,
                )
            )
        report = mw.integrity_check()
        found = finding(report, "sqlite_foreign_key_check")
        assert found.count == 1 and found.examples == ("memory_origins row 1 -> interactions",)
        assert counts(report) == {"sqlite_foreign_key_check": 1}


def test_amcheck_is_a_recorded_skip_unless_installed(mw: Memwarden, engine_name: str) -> None:
    if engine_name != "postgresql":
        pytest.skip("amcheck is PostgreSQL's")
    report = mw.integrity_check()
    check = _check(report, "pg_amcheck")
    assert check.status == "skipped"  # type: ignore[attr-defined]
    assert "CREATE EXTENSION amcheck" in check.detail  # type: ignore[attr-defined]
    assert report.status == "clean" and report.exit_code == 0


def test_amcheck_runs_when_the_scan_may_create_it(settings: Settings, engine_name: str) -> None:
    if engine_name != "postgresql":
        pytest.skip("amcheck is PostgreSQL's")
    allowed = settings.model_copy(update={"integrity_amcheck_create": True})
    with Memwarden.init(allowed) as mw:  # the extension lands in this test's own schema
        mw.add_project("atlas")
        mw.remember("atlas", "Launch in March")
        report = mw.integrity_check(full=True)
        check = _check(report, "pg_amcheck")
        assert check.status == "ok", check.detail  # type: ignore[attr-defined]
        assert check.scanned > 10  # type: ignore[attr-defined]
        assert report.status == "clean"


def test_a_check_that_cannot_run_is_an_error_and_the_others_still_run(mw: Memwarden) -> None:
    mw.remember("atlas", "Launch in March")
    with raw(mw) as conn:
        conn.exec_driver_sql("DROP TABLE project_state")
    report = mw.integrity_check()
    # The checks that read project_state fail (orphan_state, its replay, and the row MACs').
    for name in ("orphan_state", "state_gaps", "row_macs"):
        failed = _check(report, name)
        assert failed.status == "error" and "project_state" in failed.detail  # type: ignore[attr-defined]
    assert report.status == "error" and report.exit_code == 2
    others = [c for c in report.checks if c.name not in ("orphan_state", "state_gaps", "row_macs")]
    assert others and all(c.status in ("ok", "skipped") for c in others)
    assert mw.alerts.flush(10)
    assert mw.alerts.history(fingerprint="integrity-error")
