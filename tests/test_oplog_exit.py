"""A real process that exits with a full operation-log queue: the queue is flushed within
the bound, and when the database will not take the rows the exit still keeps to the bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conftest import raw_engine
from memwarden import Memwarden, Settings
from memwarden.db import schema

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    import sqlalchemy as sa
    from memwarden import Memwarden, Settings
    from memwarden.audit.oplog import OperationEntry
    from memwarden.db.engine import make_engine

    release = sys.argv[1] == "release"
    settings = Settings()
    mw = Memwarden(settings)
    mw.list_projects()  # one logged operation: the writer starts
    assert mw.oplog.flush(10)

    # Another connection takes the lock the writer needs, so the queue fills up.
    engine = make_engine(settings)
    conn = engine.connect().execution_options(memwarden_write=True)
    transaction = conn.begin()
    if engine.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE operation_log IN EXCLUSIVE MODE"))
    now = datetime.now(UTC)
    mw.oplog.log(OperationEntry("probe", "harness", "atlas", now, now, {"n": -1}))
    time.sleep(0.4)  # the writer takes the probe and blocks on the lock
    attempted = 2
    for n in range(mw.oplog.queue_size + 100):
        mw.oplog.log(OperationEntry("probe", "harness", "atlas", now, now, {"n": n}))
        attempted += 1
    report = {"queued": mw.oplog.counters()["queued"], "dropped": mw.oplog.dropped,
              "attempted": attempted}
    if release:
        transaction.rollback()
        conn.close()
    report["exiting_at"] = time.time()
    print(json.dumps(report), flush=True)
    # No close(): the interpreter's exit must flush the queue.
    """
)


def run_child(
    settings: Settings, tmp_path: Path, mode: str, bound: float
) -> tuple[dict[str, Any], float, str]:
    Memwarden.init(settings).close()
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env.update(
        MEMWARDEN_HOME=str(settings.home),
        MEMWARDEN_OPLOG_ACTIONS="*",
        MEMWARDEN_OPLOG_FLUSH_TIMEOUT_S=str(bound),
    )
    if settings.database_url:
        env["MEMWARDEN_DATABASE_URL"] = settings.database_url
    proc = subprocess.run(
        [sys.executable, str(script), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ended = time.time()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[0])
    return report, ended - report["exiting_at"], proc.stdout + proc.stderr


def stored(settings: Settings) -> int:
    engine = raw_engine(settings)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(schema.operation_log)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_exit_with_a_full_queue_flushes_it_within_the_bound(
    settings: Settings, tmp_path: Path
) -> None:
    report, exit_took, output = run_child(settings, tmp_path, "release", bound=5.0)
    assert report["queued"] == 10_000  # full
    assert report["dropped"] == 100
    assert exit_took < 5.0 + 2.0, f"the exit took {exit_took:.2f} s"
    assert stored(settings) == report["attempted"] - report["dropped"]  # every accepted row
    assert "oplog_flush_timeout" not in output


def test_exit_keeps_to_the_bound_when_the_database_will_not_take_the_rows(
    settings: Settings, tmp_path: Path
) -> None:
    report, exit_took, output = run_child(settings, tmp_path, "hold", bound=1.0)
    assert report["queued"] == 10_000
    assert 0.9 < exit_took < 1.0 + 2.0, f"the exit took {exit_took:.2f} s"
    assert "oplog_flush_timeout" in output  # the loss is said, not silent
    assert stored(settings) == 1  # only the operation written before the lock
