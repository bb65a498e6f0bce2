"""The nightly pipeline: every step in order, each isolated, every run recorded, never two at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.db import schema
from memwarden.errors import InvalidInputError
from memwarden.nightly import STEP_NAMES, RunContext, StepSkipped, run_nightly
from memwarden.observability.pipeline import RunInProgressError
from memwarden.observability.pipeline.lock import NIGHTLY_LOCK_CLASS, RunLockLostError, pg_lock_key
from nightly_support import alerts_titled, cli_for, load_sample, write_fixtures


def statuses(run: Any) -> dict[str, str]:
    return {step.name: step.status for step in run.steps}


def nothing_here(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    raise StepSkipped("not under test here")


def test_a_run_does_every_step_in_order_and_is_recorded(settings: Settings) -> None:
    settings = settings.model_copy(update={"oplog_retention_days": 30})
    load_sample(settings)
    with Memwarden(settings) as mw:
        mw.capture("atlas-rocket", "We decided to use an Inconel injector from now on.", "ok")
        seen: list[tuple[int, str | None]] = []
        run = run_nightly(mw, progress=lambda done, step: seen.append((done, step)))
        assert run.status == "ok" and run.failed_steps == 0 and run.trigger == "library"
        assert [s.name for s in run.steps] == list(STEP_NAMES)
        assert [s.position for s in run.steps] == list(range(1, len(STEP_NAMES) + 1))
        assert statuses(run) == {name: "ok" for name in STEP_NAMES}
        assert seen == [(i, name) for i, name in enumerate(STEP_NAMES)] + [(len(STEP_NAMES), None)]
        extract = run.step("extract")
        assert extract is not None and extract.counts["interactions"] == 1
        harness = run.step("harness")
        assert harness is not None and harness.counts["pass_rate"] == 1.0
        [harness_run] = mw.harness_runs()
        assert harness.counts["harness_run_id"] == harness_run.id
        assert harness_run.transport == "system"
        checks = run.step("checks")
        assert checks is not None
        assert checks.counts == {"warnings": 0, "pass_rate": 1.0, "candidate_queue": 2}
        retention = run.step("retention")
        assert retention is not None and retention.counts == {
            "reads_deleted": 0,
            "oplog_deleted": 0,
            "oplog_batches": 0,
        }
        assert run.finished_at is not None and run.duration_ms is not None
        assert mw.nightly_runs() == [run]


def test_a_failing_step_is_recorded_alerted_and_the_rest_still_run(
    settings: Settings, tmp_path: Path
) -> None:
    # A real failure: the fixtures file the settings point at cannot be read.
    broken = settings.model_copy(update={"harness_fixtures": tmp_path / "missing.yaml"})
    with Memwarden.init(broken) as mw:
        mw.add_project("atlas")
        mw.capture("atlas", "I prefer tabs over spaces.", "ok")

        def promote_explodes(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
            raise RuntimeError("promotion is broken tonight")

        run = run_nightly(mw, replace={"promote": promote_explodes})
        assert run.status == "failed" and run.failed_steps == 2
        assert statuses(run) == {
            "extract": "ok",
            "promote": "failed",
            "expire": "ok",
            "harness": "failed",
            "checks": "ok",
            "integrity": "ok",
            "checkpoint": "ok",
            "retention": "skipped",
        }
        harness = run.step("harness")
        assert harness is not None and harness.error is not None
        assert "missing.yaml does not exist" in harness.error
        promote = run.step("promote")
        assert promote is not None
        assert promote.error == "RuntimeError: promotion is broken tonight"
        checks = run.step("checks")
        assert checks is not None and checks.counts["pass_rate"] is None  # nothing to judge
        extract = run.step("extract")
        assert extract is not None and extract.counts["created"] == 1  # it ran before and after
        # each failure raised its critical alert (in the alerts table)
        for step in ("promote", "harness"):
            [alert] = alerts_titled(mw, f"nightly step {step} failed", "critical")
            assert alert.context["run_id"] == run.id and alert.context["step"] == step
        # and the record says the same as the run returned
        assert mw.nightly_run(run.id) == run


def test_integrity_findings_are_counts_not_a_failed_step(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        memory = mw.remember("atlas", "The review is on Tuesdays.", status="active").memory
        with mw.store.write() as unit:  # changed behind the ledger's back: an audit gap
            unit.conn.execute(
                sa.update(schema.memories)
                .where(schema.memories.c.id == memory.id)
                .values(content="The review is on Fridays.")
            )
        run = run_nightly(mw, skip={"extract", "promote", "expire", "harness"})
        integrity = run.step("integrity")
        assert integrity is not None and integrity.status == "ok" and run.status == "ok"
        assert integrity.counts["status"] == "findings"
        assert integrity.counts["found"] >= 1 and integrity.counts["critical"] >= 1


def test_the_cli_exits_1_when_a_step_fails_and_history_shows_it(
    settings: Settings, tmp_path: Path
) -> None:
    cli = cli_for(settings, MEMWARDEN_HARNESS_FIXTURES=str(tmp_path / "gone.json"))
    cli.run("init")
    result = cli.run("nightly", "--skip", "integrity", code=1)
    assert "nightly run 1: failed" in result.stdout
    assert "harness    failed" in result.stdout and "gone.json does not exist" in result.stdout
    assert "integrity  skipped" in result.stdout and "skipped on request" in result.stdout
    # --json: nothing but the run on stdout (no progress bar)
    run = json.loads(cli.run("nightly", "--json", "--skip", "integrity", code=1).stdout)
    assert run["id"] == 2 and run["trigger"] == "cli" and run["status"] == "failed"
    assert [s["name"] for s in run["steps"]] == list(STEP_NAMES)
    history = cli.json("nightly", "history")
    assert [r["id"] for r in history] == [2, 1]
    assert history[0] == run
    text = cli.run("nightly", "history").stdout
    # The table wraps a long path where the terminal width puts it: look for its name.
    assert "harness:failed" in text and "extract:ok" in text and "gone" in text
    assert cli.run("nightly", "--skip", "bogus", code=2).stderr.count("not a step") == 1


def test_alert_checks_warn_and_resolve(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"candidate_queue_max": 1})
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Tabs over spaces.", status="active")
        first = mw.remember("atlas", "Deploys happen on Tuesdays.").memory
        second = mw.remember("atlas", "The staging database is called kestrel.").memory
        cases = {"projects": {"atlas": [{"query": "tabs", "expect_text": "tabs"}]}}
        cases["projects"]["atlas"].append({"query": "tabs", "expect_text": "never there"})
        path = write_fixtures(tmp_path / "cases.json", cases)
        checked = settings.model_copy(update={"harness_fixtures": path})
    with Memwarden(checked) as mw:
        run = run_nightly(mw, skip={"extract", "promote", "expire", "integrity"})
        checks = run.step("checks")
        assert checks is not None
        assert checks.counts == {"warnings": 2, "pass_rate": 0.5, "candidate_queue": 2}
        [rate] = alerts_titled(mw, "retrieval harness pass rate 50.0% is below 85%", "warning")
        [queue] = alerts_titled(mw, "2 candidates wait in the triage queue (more than 1)")
        assert rate.status == queue.status == "firing"
        # both conditions clear: both alerts resolve
        mw.triage_reject([first.id, second.id])
    write_fixtures(path, {"projects": {"atlas": [{"query": "tabs", "expect_text": "tabs"}]}})
    with Memwarden(checked) as mw:
        run = run_nightly(mw, skip={"extract", "promote", "expire", "integrity"})
        checks = run.step("checks")
        assert checks is not None and checks.counts["warnings"] == 0
        assert mw.alerts.flush(10.0)
        assert [a.status for a in mw.alerts.history(fingerprint=rate.fingerprint)] == ["resolved"]
        assert [a.status for a in mw.alerts.history(fingerprint=queue.fingerprint)] == ["resolved"]


def test_unknown_step_names_are_refused(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        with pytest.raises(InvalidInputError, match="unknown nightly step 'nope'"):
            run_nightly(mw, skip={"nope"})
        with pytest.raises(InvalidInputError, match="unknown nightly step 'later'"):
            run_nightly(mw, replace={"later": nothing_here})
        assert mw.nightly_runs() == []


# -- never two at once -----------------------------------------------------------------------
def test_a_second_run_is_refused_while_one_holds_the_lock(settings: Settings) -> None:
    cli = cli_for(settings)
    cli.run("init")
    with Memwarden(settings) as holder, holder.nightly_lock():
        # another connection (and on PostgreSQL another session) asks: refused, nothing recorded
        with Memwarden(settings) as other, pytest.raises(RunInProgressError):
            run_nightly(other)
        result = cli.run("nightly", "--json", code=3)
        assert result.stdout == ""
        assert "another nightly run is in progress" in result.stderr
        assert "not starting a second one" in result.stderr
        assert holder.nightly_runs() == []
    # released: the next run goes ahead
    run = cli.json("nightly", "--skip", "integrity")
    assert run["status"] == "ok"


def test_a_run_holding_the_lock_in_another_process_blocks_this_one(settings: Settings) -> None:
    cli_for(settings).run("init")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from memwarden import Memwarden, Settings\n"
            f"s = Settings(home={str(settings.home)!r}, database_url={settings.database_url!r})\n"
            "with Memwarden(s) as mw, mw.nightly_lock():\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        line = cli_for(settings).run("nightly", code=3).stderr
        assert "another nightly run is in progress" in line
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    cli_for(settings).json("nightly", "--skip", "integrity")  # the holder is gone: runs


def _lock_row(settings: Settings, **values: Any) -> None:
    now = datetime.now(UTC)
    row = {
        "name": "nightly",
        "owner": "someone",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": now,
        "heartbeat_at": now,
    } | values
    with Memwarden(settings) as mw, mw.store.write() as unit:
        unit.conn.execute(sa.insert(schema.nightly_lock), row)


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_sqlite_takes_over_a_lock_only_when_its_holder_is_gone(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        # a live holder (a run of this very process) with a fresh heartbeat: refused
        with mw.nightly_lock(), pytest.raises(RunInProgressError, match=f"pid {os.getpid()}"):
            run_nightly(mw)
        # a row of this process's that no run of it holds (its store closed under the run,
        # tests/test_closed.py): taken over at once
        _lock_row(settings)
        assert run_nightly(mw).status == "ok"
        # a holder that died on this host: taken over at once
        _lock_row(settings, pid=_dead_pid())
        assert run_nightly(mw).status == "ok"
        # a holder elsewhere that stopped beating: taken over once the heartbeat is stale
        old = datetime.now(UTC) - timedelta(minutes=121)
        _lock_row(settings, host="elsewhere", started_at=old, heartbeat_at=old)
        assert run_nightly(mw).status == "ok"
        with mw.store.read() as conn:  # every run released the lock behind it
            assert conn.execute(sa.select(schema.nightly_lock)).all() == []
        recent = datetime.now(UTC) - timedelta(minutes=5)
        _lock_row(settings, host="elsewhere", started_at=recent, heartbeat_at=recent)
        with pytest.raises(RunInProgressError, match="elsewhere"):
            run_nightly(mw)


def test_a_run_left_running_by_a_dead_process_is_marked_abandoned(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        with mw.nightly_lock():
            orphan = mw.begin_nightly_run("cli", "gone:1")  # and then the process was killed
        run = run_nightly(mw)
        assert run.status == "ok"
        left = mw.nightly_run(orphan)
        assert left.status == "abandoned" and left.steps == () and left.finished_at is not None


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_the_sqlite_holder_keeps_beating_while_it_runs(settings: Settings) -> None:
    quick = settings.model_copy(update={"nightly_lock_stale_minutes": 0.01})  # beats every 0.15 s
    with Memwarden.init(quick) as mw, mw.nightly_lock():
        deadline = time.monotonic() + 30
        while True:
            with mw.store.read() as conn:
                row = conn.execute(sa.select(schema.nightly_lock)).one()
            if row.heartbeat_at > row.started_at:
                break
            assert time.monotonic() < deadline, "the holder never beat"
            time.sleep(0.05)
        assert row.pid == os.getpid() and row.host == socket.gethostname()


def test_a_run_that_loses_its_lock_stops_and_says_so(settings: Settings) -> None:
    """PostgreSQL: the server ended the lock's session (``pg_terminate_backend``, as a restart
    or an idle timeout would); SQLite: another run took the lock's row over. The run went on
    with every step, beside whatever run took the lock next, and nobody was told. Now its next
    heartbeat stops it: the steps after are not run, one critical alert, and a later run goes
    ahead."""
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.capture("atlas", "I prefer tabs over spaces.", "ok")

        def lose_the_lock(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
            with mw.store.write() as unit:
                if mw.store.is_sqlite:
                    unit.conn.execute(sa.update(schema.nightly_lock).values(owner="another:run"))
                else:
                    ended = unit.conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND objsubid = 2 "
                            "AND classid::bigint = :c AND objid::bigint = :k"
                        ),
                        {
                            "c": NIGHTLY_LOCK_CLASS,
                            "k": pg_lock_key(mw.database_id) & 0xFFFFFFFF,
                        },
                    ).scalars()
                    assert list(ended) == [True]
            return {}

        with pytest.raises(RunLockLostError, match="this one stops"):
            run_nightly(mw, replace={"extract": lose_the_lock})
        [stopped] = mw.nightly_runs()
        assert [step.name for step in stopped.steps] == ["extract"]  # nothing after it ran
        [alert] = alerts_titled(mw, "nightly run lost its lock", "critical")
        assert alert.context["run_id"] == stopped.id
        if mw.store.is_sqlite:
            with mw.store.write() as unit:  # the "other run" ends
                unit.conn.execute(sa.delete(schema.nightly_lock))
        run = run_nightly(mw, skip=["harness", "integrity"])
        assert run.status == "ok"
