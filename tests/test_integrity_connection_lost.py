"""An integrity scan whose database connection the server ends part way (a restart, an
operator's ``pg_terminate_backend``): before, every check after it failed with SQLAlchemy's
"Can't reconnect until invalid transaction is rolled back", the command ended in that jargon,
and no alert was raised. Now the scan stops at once with the storage fault "database
unreachable": one clear line, an alert, and the next scan runs and is kept."""

from __future__ import annotations

import importlib

import pytest

from cli_support import Cli
from memwarden import Memwarden
from memwarden.db.faults import StorageUnavailableError
from memwarden.observability.faults import active_faults
from memwarden.observability.integrity.context import CheckOutcome, CheckSpec, ScanContext

# The facade's module, which holds the scan's list of checks.
facade = importlib.import_module("memwarden.core.facade.integrity")


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_a_scan_whose_connection_the_server_ends_is_a_storage_fault(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    mw.remember("atlas", "the strongback retracts at T-30 s")
    ran: list[str] = []

    def ends_its_connection(ctx: ScanContext) -> CheckOutcome:
        ctx.conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return CheckOutcome()

    def after(ctx: ScanContext) -> CheckOutcome:
        ran.append("after")
        return CheckOutcome()

    real = facade.checks_for
    monkeypatch.setattr(
        facade,
        "checks_for",
        lambda dialect: (CheckSpec("ends", ends_its_connection), CheckSpec("after", after)),
    )
    with pytest.raises(StorageUnavailableError, match="database unreachable"):
        mw.integrity_check()
    assert ran == []  # nothing ran on a connection known gone
    assert "storage:unreachable" in [f.key for f in active_faults()]
    cli = Cli(mw.settings.home, mw.settings.database_url)
    stderr = cli.run("integrity", "check", code=2).stderr  # 2: the scan could not run
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: database unreachable"), stderr
    assert "rolled back" not in stderr and "Traceback" not in stderr
    monkeypatch.setattr(facade, "checks_for", real)
    report = mw.integrity_check()  # the next scan runs on a new connection, and is kept
    assert report.run.status == "clean"
    latest = mw.latest_integrity()
    assert latest is not None and latest.id == report.run.id
    assert "storage:unreachable" not in [f.key for f in active_faults()]
