"""The server's own schedule (APScheduler 3, a ``BackgroundScheduler``): the nightly run when
``MEMWARDEN_NIGHTLY_CRON`` is set, and the operation log's retention sweep every hour when
``MEMWARDEN_OPLOG_RETENTION_DAYS`` is on, and a signed checkpoint when
``MEMWARDEN_CHECKPOINT_EVERY_ROWS`` / ``_EVERY_MINUTES`` call for one (polled every 30 s).

``server_schedule`` reads the cron line at once (a bad one is a ``CronError`` when the server
starts, not a silent night without a run); the jobs open the database only when they fire.
Every server process may run a scheduler: the run lock lets one nightly run through and the
others log that they found it busy. ``serve --workers N`` passes a ``gate`` (the worker that
holds the leader lock, ``serving/leader.py``): the jobs of the other workers fire and return at
once, so a checkpoint or sweep is not made N times. A job never raises into the scheduler: a nightly that
cannot start raises a critical alert instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeVar

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from memwarden.config import Settings
from memwarden.core.service import Memwarden
from memwarden.errors import ClosedError
from memwarden.nightly import cron
from memwarden.nightly.runner import run_nightly
from memwarden.observability.alerts import emit_alert
from memwarden.observability.faults import clear_fault, raise_fault
from memwarden.observability.pipeline import NightlyRun, RunInProgressError
from memwarden.observability.pipeline.lock import RunLockLostError

log = structlog.get_logger("memwarden.nightly")

NIGHTLY_JOB = "nightly"
SWEEP_JOB = "oplog-retention"
SWEEP_EVERY_HOURS = 1
CHECKPOINT_JOB = "checkpoint"
CHECKPOINT_POLL_SECONDS = 30.0
OpenMemwarden = Callable[[], Memwarden]
Gate = Callable[[], bool]
T = TypeVar("T")


def nightly_job(open_mw: OpenMemwarden) -> NightlyRun | None:
    """One scheduled nightly run; None when another run holds the lock or it could not start."""
    try:
        return run_nightly(open_mw(), trigger="scheduler")
    except RunInProgressError as exc:
        log.warning("nightly_skipped_busy", reason=str(exc))
    except RunLockLostError as exc:  # the run stopped itself, and its alert is out
        log.error("nightly_stopped_lock_lost", reason=str(exc))
    except ClosedError:
        _stopped("nightly_job")
    except Exception as exc:  # a job must not die silently in the scheduler
        log.error("nightly_job_failed", exc_info=exc)
        emit_alert(
            "critical",
            "scheduled nightly run could not run",
            f"The server's nightly run failed before its steps: {type(exc).__name__}: {exc}",
            {"error_type": type(exc).__name__},
        )
    return None


def sweep_job(open_mw: OpenMemwarden) -> int | None:
    """The operation log's retention sweep; the rows deleted (None when off or failed)."""
    try:
        swept = open_mw().oplog.sweep()
    except ClosedError:
        _stopped("sweep_job")
        return None
    except Exception as exc:  # the next hour tries again; the log says why
        log.error("oplog_sweep_job_failed", exc_info=exc)
        return None
    if swept is None:
        return None
    log.info("oplog_swept", deleted=swept.deleted, batches=len(swept.batches))
    return swept.deleted


def checkpoint_job(open_mw: OpenMemwarden) -> int | None:
    """A checkpoint when the configured cadence calls for one (``MEMWARDEN_CHECKPOINT_EVERY_
    ROWS`` / ``_MINUTES``); the tree size signed, or None. Runs on the scheduler's thread, so
    writers never wait for it; a failure raises its fault (one critical alert per episode)."""
    try:
        mw = open_mw()
        if not mw.checkpoints.due():
            return None
        result = mw.checkpoint("schedule")
    except ClosedError:
        _stopped("checkpoint_job")
        return None
    except Exception as exc:  # the next poll tries again; the operator hears of it once
        log.error("checkpoint_job_failed", exc_info=exc)
        raise_fault(
            "checkpoint-schedule",
            "Scheduled checkpoint failed",
            f"{type(exc).__name__}: {exc}",
            {"error_type": type(exc).__name__},
        )
        return None
    clear_fault("checkpoint-schedule")
    return result.record.tree_size


def _stopped(job: str) -> None:
    """The server closed its memwarden under a job (its shutdown): not a fault. A nightly run
    cut short this way is marked abandoned by the next."""
    log.info("scheduled_job_stopped", job=job, reason="memwarden was closed")


def _gated(
    job: Callable[[OpenMemwarden], T], gate: Gate | None
) -> Callable[[OpenMemwarden], T | None]:
    if gate is None:
        return job

    def run(open_mw: OpenMemwarden) -> T | None:
        return job(open_mw) if gate() else None

    run.__name__ = job.__name__
    return run


def server_schedule(
    settings: Settings,
    open_mw: OpenMemwarden,
    *,
    timezone: tzinfo | str | None = None,
    gate: Gate | None = None,
) -> BackgroundScheduler | None:
    """The scheduler the server should run (not started), or None when it has nothing to do.
    ``timezone``: of the cron line (default the server's local time zone). ``gate``: asked
    each time a job fires; the job runs only when it says yes."""
    line = settings.nightly_cron.strip()
    sweeping = settings.oplog_retention_days >= 0
    checkpointing = settings.checkpoint_every_rows > 0 or settings.checkpoint_every_minutes > 0
    if not line and not sweeping and not checkpointing:
        return None
    options = {"timezone": timezone} if timezone is not None else {}
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        **options,
    )
    if line:
        trigger = cron.parse(line, timezone)
        scheduler.add_job(
            _gated(nightly_job, gate),
            trigger,
            args=[open_mw],
            id=NIGHTLY_JOB,
            name="memwarden nightly",
        )
    if sweeping:
        scheduler.add_job(
            _gated(sweep_job, gate),
            IntervalTrigger(hours=SWEEP_EVERY_HOURS),
            # First a minute after start-up, not an hour: a server restarted more often than
            # hourly would otherwise never sweep.
            next_run_time=datetime.now(UTC) + timedelta(minutes=1),
            args=[open_mw],
            id=SWEEP_JOB,
            name="operation log retention sweep",
        )
    if checkpointing:
        poll = CHECKPOINT_POLL_SECONDS
        if settings.checkpoint_every_minutes:
            poll = min(poll, settings.checkpoint_every_minutes * 60)
        scheduler.add_job(
            _gated(checkpoint_job, gate),
            IntervalTrigger(seconds=poll),
            args=[open_mw],
            id=CHECKPOINT_JOB,
            name="ledger checkpoint",
        )
    return scheduler


def stop(scheduler: BackgroundScheduler) -> None:
    """Stop firing; a job already running finishes (or fails) on its own thread, and a run it
    leaves unfinished is marked abandoned by the next one."""
    if scheduler.running:
        scheduler.shutdown(wait=False)
