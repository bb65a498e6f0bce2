"""Alerts: every failure reaches the log, the alerts file, the database and chat webhooks.

``emit_alert(severity, title, message, context)`` fans out to the structured log and the
alerts file at once, and through a durable outbox (committed by a writer thread, delivered
by one worker thread per webhook) to Discord, Slack or any JSON webhook. Repeats of one
problem (same fingerprint) within the throttle window are counted, not re-sent;
``resolve_alert(fingerprint)`` sends a resolved notice. At start-up, alerts that reached the
file but not the database (their process died first) are replayed from the file.

Modules: model (the alert, its fingerprint), sinks (log, file), targets (webhook URLs),
notice/discord/formats (payloads), transport (one HTTP attempt), recording (a batch of
alerts into the tables, throttled), outbox (claims, attempts, dead letters), writer and worker
(the threads; the retry policy is ``memwarden.observability.backoff``), giveup (the alert a
given-up delivery raises through the other sinks), replay (the alerts file's lines the database never got), history (reading back),
service (``Alerts``), default (the process-wide ``emit_alert``).
"""

from memwarden.observability.alerts.default import (
    current,
    emit_alert,
    install,
    reset_fallback,
    resolve_alert,
    uninstall,
)
from memwarden.observability.alerts.history import AlertRecord, AttemptRecord, DeliveryRecord
from memwarden.observability.alerts.model import SEVERITIES, Alert, fingerprint, severity_of
from memwarden.observability.alerts.service import Alerts
from memwarden.observability.alerts.targets import AlertConfigError, WebhookTarget
from memwarden.observability.alerts.worker import Policy

__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertConfigError",
    "AlertRecord",
    "Alerts",
    "AttemptRecord",
    "DeliveryRecord",
    "Policy",
    "WebhookTarget",
    "current",
    "emit_alert",
    "fingerprint",
    "install",
    "reset_fallback",
    "resolve_alert",
    "severity_of",
    "uninstall",
]
