"""What is said when a webhook delivery is given up: the alert that goes through the other sinks.

A permanent answer (the webhook is misconfigured) and a spent time budget (a dead letter) each
raise a critical alert naming the webhook by its redacted form (host and port, never the
secret), fingerprinted by the webhook so that repeats fold into one notice per throttle window.
A test alert raises none: ``alert test`` reports its own outcome to the one who asked.
"""

from __future__ import annotations

from typing import Any

from memwarden.observability.alerts.outbox import Job, State
from memwarden.observability.alerts.targets import WebhookTarget
from memwarden.observability.alerts.transport import Outcome


def announcement(
    target: WebhookTarget, job: Job, outcome: Outcome, state: State, budget: float
) -> tuple[str, str, dict[str, Any]] | None:
    """The title, message and context of the alert, or None when none is due."""
    notice = job.notice
    if notice.kind == "test" or state not in ("failed", "dead"):
        return None
    attempts = job.attempts + 1
    context: dict[str, Any] = {
        "target": target.redacted,
        "target_kind": target.kind,
        "delivery_id": notice.delivery_id,
        "alert_id": notice.alert_id,
        "alert_title": notice.title,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "attempts": attempts,
        "target_key": target.key,
    }
    if state == "failed":
        title = f"Alert webhook misconfigured: {target.redacted}"
        message = (
            f"The {target.kind} webhook {target.redacted} answered {outcome.error} to alert "
            f"{notice.alert_id} ({notice.title!r}): an answer that retrying cannot change, so "
            "its deliveries stop here. Fix MEMWARDEN_ALERT_WEBHOOK, then "
            "`memwarden alert redeliver --all`."
        )
    else:
        title = f"Alert delivery gave up: {target.redacted}"
        noun = "attempt" if attempts == 1 else "attempts"
        message = (
            f"Alert {notice.alert_id} ({notice.title!r}) never reached the {target.kind} webhook "
            f"{target.redacted} within its retry budget ({budget / 3600:g} h, {attempts} {noun}; "
            f"last: {outcome.error}). It is a dead letter: `memwarden alert dead` lists them, "
            "`memwarden alert redeliver` sends them again."
        )
    return title, message, context
