"""Doctor checks for alerts: webhooks configured, dead letters, the oldest pending delivery."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from memwarden.core.doctor import Check, CheckResult, DoctorContext, Status
from memwarden.observability.alerts import outbox

# A delivery pending longer than this is worth a look (the receiver may be down for good).
STALE_PENDING_SECONDS = 3600.0


def check_alert_targets(ctx: DoctorContext) -> Iterable[CheckResult]:
    if ctx.memwarden is None:
        yield ctx.need_store("alert_targets") or CheckResult("alert_targets", "fail", "")
        return
    targets = ctx.memwarden.alerts.targets
    if not targets:
        yield CheckResult(
            "alert_targets",
            "warn",
            "no webhook configured (MEMWARDEN_ALERT_WEBHOOK): alerts reach the log, the alerts "
            "file and the dashboard only",
        )
        return
    names = [f"{t.kind} {t.redacted}" for t in targets]
    yield CheckResult(
        "alert_targets", "ok", f"{len(targets)} webhook(s): {', '.join(names)}", {"targets": names}
    )


def check_alert_dead_letters(ctx: DoctorContext) -> Iterable[CheckResult]:
    if ctx.memwarden is None:
        yield ctx.need_store("alert_dead_letters") or CheckResult("alert_dead_letters", "fail", "")
        return
    with ctx.memwarden.store.read() as conn:
        dead = outbox.dead_count(conn)
    if dead:
        yield CheckResult(
            "alert_dead_letters",
            "fail",
            f"{dead} alert deliveries given up (dead letters): `memwarden alert dead` lists "
            "them, `memwarden alert redeliver --all` sends them again",
            {"dead_letters": dead},
        )
        return
    yield CheckResult("alert_dead_letters", "ok", "no dead letters", {"dead_letters": 0})


def check_alert_pending(ctx: DoctorContext) -> Iterable[CheckResult]:
    if ctx.memwarden is None:
        yield ctx.need_store("alert_pending") or CheckResult("alert_pending", "fail", "")
        return
    with ctx.memwarden.store.read() as conn:
        oldest = outbox.oldest_pending(conn)
        pending = outbox.pending_count(conn)
    if oldest is None:
        yield CheckResult("alert_pending", "ok", "no delivery pending", {"pending": 0})
        return
    age = (datetime.now(UTC) - oldest).total_seconds()
    data = {"pending": pending, "oldest_pending_seconds": round(age, 1)}
    status: Status = "warn" if age > STALE_PENDING_SECONDS else "ok"
    yield CheckResult(
        "alert_pending",
        status,
        f"{pending} deliveries pending, the oldest for {_age(age)}",
        data,
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


CHECKS: list[Check] = [check_alert_targets, check_alert_dead_letters, check_alert_pending]
