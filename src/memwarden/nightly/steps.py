"""The nightly steps, in the order they run. Each takes the open ``Memwarden`` and the run's
context and returns its counts (what it did, for the run record).

A step ends one of three ways: it returns (``ok``), raises ``StepSkipped`` (``skipped``:
nothing to do here, with the reason), or raises anything else (``failed``: the runner records
the error, raises a critical alert and goes on with the next step). ``StepFailed`` carries
counts along with the failure, for a step that did part of its work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memwarden.core.facade.harness import HarnessNotConfiguredError
from memwarden.core.service import Memwarden
from memwarden.nightly import checks
from memwarden.observability.harness import HarnessRun
from memwarden.observability.pipeline import RunLease


@dataclass
class RunContext:
    """What the steps of one run share: its id, and what earlier steps found."""

    run_id: int
    lease: RunLease
    harness: HarnessRun | None = None


StepFn = Callable[[Memwarden, RunContext], dict[str, Any]]


class StepSkipped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StepFailed(Exception):
    def __init__(self, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.counts = counts


def extract(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    """Candidates from the interactions captured since the last run (per-project watermarks)."""
    report = mw.extract()
    counts = {
        "interactions": report.interactions,
        "created": len(report.created),
        "reinforced": len(report.reinforced),
        "invalid_candidates": report.invalid_candidates,
        "failures": sum(report.failures.values()),
    }
    if report.stopped:
        raise StepFailed(f"extraction stopped early: {report.stopped}", counts)
    return counts


def promote(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    return {"promoted": len(mw.promote_reinforced().moved)}


def expire(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    return {"expired": len(mw.expire_stale().moved)}


def harness(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    try:
        run = mw.run_harness()
    except HarnessNotConfiguredError as exc:
        raise StepSkipped(str(exc)) from None
    ctx.harness = run
    return {
        "harness_run_id": run.id,
        "total": run.total,
        "passed": run.passed,
        "failed": run.failed,
        "pass_rate": round(run.pass_rate, 4),
    }


def alert_checks(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    return checks.run(mw, ctx.harness)


def integrity(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    """The incremental integrity scan. It raises its own alerts for what it finds; a scan with
    a check that could not run fails the step."""
    report = mw.integrity_check(full=False, fix=False, dry_run=False, progress=None)
    counts = checks.integrity_counts(report)
    if report.status == "error":
        broken = "; ".join(f"{c.name}: {c.detail}" for c in report.checks if c.status == "error")
        raise StepFailed(
            f"integrity scan could not complete ({broken or report.run.error or 'unknown'})",
            counts,
        )
    return counts


def retention(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    """The retention sweeps: who-read-what (``MEMWARDEN_READS_RETENTION_DAYS``) and the
    operation log's (``MEMWARDEN_OPLOG_RETENTION_DAYS``; skipped when that is off)."""
    reads_deleted = mw.reads.sweep()
    swept = mw.oplog.sweep()
    if swept is None:
        # Who-read-what was swept all the same; the step reports the oplog's part.
        raise StepSkipped("no oplog retention (MEMWARDEN_OPLOG_RETENTION_DAYS=-1)")
    return {
        "reads_deleted": reads_deleted,
        "oplog_deleted": swept.deleted,
        "oplog_batches": len(swept.batches),
    }


def checkpoint(mw: Memwarden, ctx: RunContext) -> dict[str, Any]:
    """Sign the ledger's tree head and publish it off the machine. A publisher that fails
    fails the step (it has raised its own alert); the checkpoint is kept either way."""
    result = mw.checkpoint("nightly")
    counts = {
        "tree_size": result.record.tree_size,
        "published": sum(1 for p in result.publications if p.ok),
        "failed": sum(1 for p in result.publications if not p.ok),
    }
    if not result.published_ok:
        failed = "; ".join(f"{p.publisher}: {p.error}" for p in result.publications if not p.ok)
        raise StepFailed(f"checkpoint not published ({failed})", counts)
    return counts


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn


STEPS: tuple[Step, ...] = (
    Step("extract", extract),
    Step("promote", promote),
    Step("expire", expire),
    Step("harness", harness),
    Step("checks", alert_checks),
    Step("integrity", integrity),
    Step("checkpoint", checkpoint),
    Step("retention", retention),
)
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
