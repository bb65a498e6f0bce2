"""The nightly alert checks (spec 2.3): a retrieval harness pass rate below
``MEMWARDEN_HARNESS_MIN_PASS_RATE`` (85%) and a candidate queue above
``MEMWARDEN_CANDIDATE_QUEUE_MAX`` (200) each raise a warning; a check that passes again
resolves its alert (a resolved notice goes out only when one was firing).
"""

from __future__ import annotations

from typing import Any

from memwarden.core.service import Memwarden
from memwarden.observability.harness import HarnessRun
from memwarden.observability.integrity import IntegrityReport

PASS_RATE = "nightly:harness-pass-rate"
QUEUE = "nightly:candidate-queue"


def run(mw: Memwarden, harness: HarnessRun | None) -> dict[str, Any]:
    settings = mw.settings
    counts: dict[str, Any] = {"warnings": 0}
    if harness is None:
        counts["pass_rate"] = None  # the harness step was skipped or failed: nothing to judge
    else:
        floor = settings.harness_min_pass_rate
        counts["pass_rate"] = round(harness.pass_rate, 4)
        if harness.pass_rate < floor:
            counts["warnings"] += 1
            mw.alerts.emit(
                "warning",
                f"retrieval harness pass rate {harness.pass_rate:.1%} is below {floor:.0%}",
                f"{harness.failed} of {harness.total} harness cases failed (harness run "
                f"{harness.id}, fixtures {harness.fixtures}): see `memwarden harness history`.",
                {"harness_run_id": harness.id, "pass_rate": round(harness.pass_rate, 4)},
                fingerprint=PASS_RATE,
            )
        else:
            _resolve(mw, PASS_RATE)
    limit = settings.candidate_queue_max
    queue = mw.triage_size()
    counts["candidate_queue"] = queue
    if queue > limit:
        counts["warnings"] += 1
        mw.alerts.emit(
            "warning",
            f"{queue} candidates wait in the triage queue (more than {limit})",
            "Candidate memories pile up faster than they are triaged: `memwarden triage`.",
            {"candidate_queue": queue, "limit": limit},
            fingerprint=QUEUE,
        )
    else:
        _resolve(mw, QUEUE)
    return counts


def _resolve(mw: Memwarden, fingerprint: str) -> None:
    mw.alerts.flush()  # an alert raised moments ago must be in the table to be seen firing
    latest = mw.alerts.history(fingerprint=fingerprint, limit=1)
    if latest and latest[0].status == "firing":
        mw.alerts.resolve(fingerprint)


def integrity_counts(report: IntegrityReport) -> dict[str, Any]:
    """The summary of an integrity scan worth keeping with the nightly run."""
    return {
        "integrity_run_id": report.run.id,
        "status": report.status,
        "findings": len(report.findings),
        "found": sum(f.count for f in report.findings),
        "critical": sum(1 for f in report.findings if f.severity == "critical"),
        "checks_failed": [c.name for c in report.checks if c.status == "error"],
    }
