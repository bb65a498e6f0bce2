"""The alerts a scan raises: a warning for any finding, a critical alert for a ledger break, an
audit gap or a damaged database; a resolved notice once a later scan no longer sees them."""

from __future__ import annotations

from memwarden.observability.alerts import emit_alert, resolve_alert
from memwarden.observability.integrity.findings import Finding, IntegrityRun

FINDINGS_FINGERPRINT = "integrity-findings"
CRITICAL_FINGERPRINT = "integrity-critical"
ERROR_FINGERPRINT = "integrity-error"


def announce(run: IntegrityRun) -> None:
    """Never raises (``emit_alert`` never does)."""
    context = {
        "run_id": run.id,
        "full": run.full,
        "findings": {f.check: f.count for f in run.findings},
    }
    if run.findings:
        emit_alert(
            "warning",
            "Integrity scan found drift",
            _summary(run.findings) + "\nSee `memwarden integrity check` or GET /admin/integrity.",
            context,
            fingerprint=FINDINGS_FINGERPRINT,
        )
    else:
        resolve_alert(FINDINGS_FINGERPRINT)
    critical = [f for f in run.findings if f.severity == "critical"]
    if critical:
        emit_alert(
            "critical",
            "Integrity scan: the ledger or the database cannot be trusted",
            _summary(critical)
            + "\nA ledger break or an audit gap is never repaired automatically: a person must "
            "look (`memwarden audit verify`, docs/ledger.md).",
            context,
            fingerprint=CRITICAL_FINGERPRINT,
        )
    else:
        resolve_alert(CRITICAL_FINGERPRINT)
    failed = [c for c in run.checks if c.status == "error"]
    if failed or run.error:
        detail = "; ".join(f"{c.name}: {c.detail}" for c in failed) or str(run.error)
        emit_alert(
            "warning",
            "Integrity scan could not run every check",
            detail,
            context,
            fingerprint=ERROR_FINGERPRINT,
        )
    else:
        resolve_alert(ERROR_FINGERPRINT)


def _summary(findings: list[Finding]) -> str:
    return "\n".join(f"- {f.check} ({f.severity}): {f.message}" for f in findings)
