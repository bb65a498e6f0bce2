"""``run_nightly``: the steps in order, each isolated, under the run lock, every one recorded.

A step that raises is recorded as failed with its error, raises a critical alert, and the next
step runs anyway. The run holds the database's run lock throughout: a second run meanwhile
gets ``RunInProgressError`` before it records anything.

The documented hook: ``replace={"harness": my_step}`` runs ``my_step(mw, ctx)`` in that step's
place (embedders adding their own checks; tests forcing a step to fail).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from memwarden.audit.oplog import via
from memwarden.core.service import Memwarden
from memwarden.errors import ClosedError, InvalidInputError
from memwarden.nightly.steps import STEP_NAMES, STEPS, RunContext, StepFailed, StepFn, StepSkipped
from memwarden.observability.pipeline import NightlyRun, StepRecord, StepStatus
from memwarden.observability.pipeline.lock import RunLockLostError

log = structlog.get_logger("memwarden.nightly")

# Told before each step (steps done so far, the step starting) and once at the end (all, None).
Progress = Callable[[int, str | None], None]
TRIGGERS = ("cli", "scheduler", "library")


def _check_names(names: Collection[str], what: str) -> None:
    unknown = sorted(set(names) - set(STEP_NAMES))
    if unknown:
        raise InvalidInputError(
            f"unknown nightly step {unknown[0]!r} in {what}: the steps are {', '.join(STEP_NAMES)}"
        )


def run_nightly(
    mw: Memwarden,
    *,
    trigger: str = "library",
    skip: Collection[str] = (),
    replace: Mapping[str, StepFn] | None = None,
    progress: Progress | None = None,
) -> NightlyRun:
    """Run every step once, in order; the recorded run with its steps."""
    replace = dict(replace or {})
    _check_names(skip, "skip")
    _check_names(replace, "replace")
    if trigger not in TRIGGERS:
        raise InvalidInputError(f"unknown trigger {trigger!r}: one of {', '.join(TRIGGERS)}")
    with mw.nightly_lock() as lease, via("system"):
        clock = time.perf_counter()
        run_id = mw.begin_nightly_run(trigger)
        log.info("nightly_started", run_id=run_id, trigger=trigger)
        ctx = RunContext(run_id=run_id, lease=lease)
        for position, step in enumerate(STEPS, start=1):
            if progress is not None:
                progress(position - 1, step.name)
            if step.name in skip:
                record = _skipped(step.name, position, "skipped on request (--skip)")
            else:
                record = _run_step(mw, ctx, step.name, position, replace.get(step.name, step.run))
            _keep(mw, ctx, record)
        run = mw.finish_nightly_run(run_id, (time.perf_counter() - clock) * 1000.0)
    if progress is not None:
        progress(len(STEPS), None)
    log.info("nightly_finished", run_id=run.id, status=run.status, failed=run.failed_steps)
    return run


def _run_step(mw: Memwarden, ctx: RunContext, name: str, position: int, fn: StepFn) -> StepRecord:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    status: StepStatus = "ok"
    error: str | None = None
    counts: dict[str, Any] = {}
    try:
        counts = fn(mw, ctx)
    except ClosedError:
        raise  # not the step's failure: the run ends (the next marks it abandoned)
    except StepSkipped as exc:
        status, counts = "skipped", {"reason": exc.reason}
    except StepFailed as exc:
        status, counts, error = "failed", exc.counts, str(exc)
    except Exception as exc:  # spec 2.5: a failing step never stops the others
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.error("nightly_step_failed", run_id=ctx.run_id, step=name, error=error)
        log.debug("nightly_step_traceback", run_id=ctx.run_id, step=name, exc_info=exc)
    return StepRecord(
        name=name,
        position=position,
        status=status,
        started_at=started,
        duration_ms=(time.perf_counter() - clock) * 1000.0,
        counts=counts,
        error=error,
    )


def _skipped(name: str, position: int, reason: str) -> StepRecord:
    return StepRecord(name, position, "skipped", datetime.now(UTC), 0.0, {"reason": reason})


def _keep(mw: Memwarden, ctx: RunContext, record: StepRecord) -> None:
    """Record the step, alert on its failure, and tell the lock the run is alive."""
    if record.status == "failed":
        mw.alerts.emit(
            "critical",
            f"nightly step {record.name} failed",
            f"Nightly run {ctx.run_id}: step {record.name} failed: {record.error}. The other "
            "steps ran; see `memwarden nightly history`.",
            {"run_id": ctx.run_id, "step": record.name, "error": record.error},
            fingerprint_keys=("step",),
        )
    try:
        mw.record_nightly_step(ctx.run_id, record)
        ctx.lease.heartbeat()
    except ClosedError:
        raise
    except RunLockLostError as lost:
        # The next steps would run beside another run's: the run stops here (its record is
        # left running, and the next run marks it abandoned).
        mw.alerts.emit(
            "critical",
            "nightly run lost its lock",
            f"Nightly run {ctx.run_id} stopped after step {record.name}: {lost}",
            {"run_id": ctx.run_id, "step": record.name},
        )
        raise
    except Exception as exc:  # noqa: BLE001 - the next steps still run; the alert says why
        log.error("nightly_record_failed", run_id=ctx.run_id, step=record.name, error=str(exc))
        mw.alerts.emit(
            "critical",
            "nightly run could not record a step",
            f"Nightly run {ctx.run_id}: recording step {record.name} failed: {exc}",
            {"run_id": ctx.run_id, "step": record.name},
            fingerprint_keys=("step",),
        )
