"""The server's schedule: MEMWARDEN_NIGHTLY_CRON read as crontab, checked at start, and jobs that
really run the nightly (and the hourly operation log sweep)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi.testclient import TestClient

from memwarden import Memwarden, Settings
from memwarden.api.app import create_app
from memwarden.nightly import cron, scheduler
from memwarden.nightly.cron import CronError
from nightly_support import cli_for

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def fires(line: str, count: int = 3) -> list[str]:
    trigger = cron.parse(line, "UTC")
    return [t.strftime("%a %d %H:%M") for t in cron.next_times(trigger, count, JAN_1)]


def test_the_cron_line_means_what_crontab_means() -> None:
    assert fires("30 2 * * *") == ["Thu 01 02:30", "Fri 02 02:30", "Sat 03 02:30"]
    # weekday 0 and 7 are Sunday, as in crontab (APScheduler's own numbering says Monday)
    assert fires("0 3 * * 0", 2) == ["Sun 04 03:00", "Sun 11 03:00"]
    assert fires("0 3 * * 7", 1) == ["Sun 04 03:00"]
    assert fires("0 3 * * 1-5", 3) == ["Thu 01 03:00", "Fri 02 03:00", "Mon 05 03:00"]
    assert fires("0 3 * * 5-7", 3) == ["Fri 02 03:00", "Sat 03 03:00", "Sun 04 03:00"]
    assert fires("0 3 * * */2", 3) == ["Thu 01 03:00", "Sat 03 03:00", "Sun 04 03:00"]
    assert fires("0 3 * * SUN,wed", 2) == ["Sun 04 03:00", "Wed 07 03:00"]
    assert fires("*/20 * * * *", 3) == ["Thu 01 00:00", "Thu 01 00:20", "Thu 01 00:40"]
    assert fires("0 4 15 * *", 2) == ["Thu 15 04:00", "Sun 15 04:00"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 3 * *", "a crontab line has 5 fields"),
        ("@daily", "a crontab line has 5 fields"),
        ("61 3 * * *", "the last value (61) is higher than the maximum value (59)"),
        ("0 25 * * *", "higher than the maximum"),
        ("0 3 * * 8", "'8' is not a day of week"),
        ("0 3 * * 5-1", "runs backwards"),
        ("0 3 * * mon-", "bad day of week"),
        ("0 3 1 * mon", "restrict the day of month or the day of week, not both"),
    ],
)
def test_a_bad_cron_line_is_refused_with_the_reason(line: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        cron.parse(line)
    assert str(caught.value).startswith(f"invalid MEMWARDEN_NIGHTLY_CRON {line!r}")
    assert message in str(caught.value)


def test_nightly_schedule_prints_the_next_runs(tmp_path: Path) -> None:
    cli = cli_for(Settings(home=tmp_path / "home"), MEMWARDEN_NIGHTLY_CRON="15 1 * * 0")
    out = cli.json("nightly", "schedule", "--count", "2")
    assert out["cron"] == "15 1 * * 0" and len(out["next"]) == 2
    assert all(datetime.fromisoformat(t).strftime("%a %H:%M") == "Sun 01:15" for t in out["next"])
    bad = cli_for(Settings(home=tmp_path / "home"), MEMWARDEN_NIGHTLY_CRON="1 2 3")
    assert "invalid MEMWARDEN_NIGHTLY_CRON '1 2 3'" in bad.error("nightly", "schedule")
    unset = cli_for(Settings(home=tmp_path / "home")).run("nightly", "schedule").stdout
    assert "is not set" in unset


def test_the_server_refuses_to_start_on_a_bad_cron_line(settings: Settings) -> None:
    cli_for(settings).run("init")
    cli = cli_for(settings, MEMWARDEN_NIGHTLY_CRON="0 3 * * * *")
    line = cli.error("serve", "--port", "1")
    assert "invalid MEMWARDEN_NIGHTLY_CRON '0 3 * * * *'" in line
    with pytest.raises(CronError):
        create_app(settings.model_copy(update={"nightly_cron": "every night"}))


def test_no_schedule_without_a_cron_line_or_a_retention(settings: Settings) -> None:
    assert scheduler.server_schedule(settings, lambda: pytest.fail("not opened")) is None


def test_the_jobs_are_wired_to_the_nightly_and_the_sweep(settings: Settings) -> None:
    scheduled = settings.model_copy(
        update={"nightly_cron": "30 2 * * *", "oplog_retention_days": 7}
    )
    with Memwarden.init(scheduled) as mw:
        schedule = scheduler.server_schedule(scheduled, lambda: mw, timezone="UTC")
        assert schedule is not None
        nightly = schedule.get_job(scheduler.NIGHTLY_JOB)
        sweep = schedule.get_job(scheduler.SWEEP_JOB)
        assert isinstance(nightly.trigger, CronTrigger)
        assert isinstance(sweep.trigger, IntervalTrigger)
        assert sweep.trigger.interval.total_seconds() == 3600
        # calling the jobs as the scheduler would
        run = nightly.func(*nightly.args)
        assert run is not None and run.trigger == "scheduler"
        assert mw.nightly_runs()[0].id == run.id
        assert sweep.func(*sweep.args) == 0
        # a busy lock: the job steps aside without raising, nothing recorded
        with mw.nightly_lock():
            assert nightly.func(*nightly.args) is None
        assert len(mw.nightly_runs()) == 1


def test_the_scheduler_really_fires_the_nightly(settings: Settings) -> None:
    scheduled = settings.model_copy(update={"nightly_cron": "0 3 * * *"})
    with Memwarden.init(scheduled) as mw:
        schedule = scheduler.server_schedule(scheduled, lambda: mw, timezone="UTC")
        assert schedule is not None
        schedule.start()
        try:
            schedule.get_job(scheduler.NIGHTLY_JOB).modify(next_run_time=datetime.now(UTC))
            deadline = time.monotonic() + 60
            while not mw.nightly_runs() or mw.nightly_runs()[0].status == "running":
                assert time.monotonic() < deadline, "the scheduled nightly never ran"
                time.sleep(0.05)
        finally:
            scheduler.stop(schedule)
        [run] = mw.nightly_runs()
        assert run.trigger == "scheduler" and run.finished_at is not None


def test_the_app_runs_its_schedule_while_it_is_up(settings: Settings) -> None:
    scheduled = settings.model_copy(update={"nightly_cron": "0 3 * * *"})
    Memwarden.init(scheduled).close()
    app = create_app(scheduled)
    assert not app.state.schedule.running
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert app.state.schedule.running
        assert app.state.schedule.get_job(scheduler.NIGHTLY_JOB) is not None
    assert not app.state.schedule.running


def test_an_app_whose_lifespan_runs_again_runs_its_schedule_again(settings: Settings) -> None:
    """APScheduler's scheduler does not run its jobs again once shut down (it logs an error
    for each and drops them): the second lifespan must not run with an empty schedule."""
    scheduled = settings.model_copy(update={"nightly_cron": "0 3 * * *"})
    Memwarden.init(scheduled).close()
    app = create_app(scheduled)
    for _ in range(2):
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            assert app.state.schedule.running
            assert app.state.schedule.get_job(scheduler.NIGHTLY_JOB) is not None
        assert not app.state.schedule.running
