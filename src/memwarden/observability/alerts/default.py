"""The process-wide ``emit_alert``: it reaches the ``Alerts`` of the open memwarden, if any.

A ``Memwarden`` installs its ``Alerts`` when it opens and removes it when it closes. Before
(or without) a database, a fallback built from the environment's settings writes the log and
the alerts file only; if even the settings cannot be read, the log alone.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import structlog

from memwarden.config import Settings
from memwarden.observability.alerts.service import Alerts

log = structlog.get_logger("memwarden.alerts")

_lock = threading.Lock()
_installed: list[Alerts] = []
_fallback: Alerts | None = None


def install(alerts: Alerts) -> None:
    with _lock:
        _installed.append(alerts)


def uninstall(alerts: Alerts) -> None:
    with _lock:
        for index in range(len(_installed) - 1, -1, -1):
            if _installed[index] is alerts:
                del _installed[index]
                break


@atexit.register
def _flush_at_exit() -> None:
    """A program that exits without closing its memwarden still commits its queued alerts."""
    with _lock:
        installed = list(_installed)
    for alerts in installed:
        alerts.flush(2.0)


def reset_fallback() -> None:
    """Forget the fallback, so the next alert reads the settings again (tests, embedders)."""
    global _fallback
    with _lock:
        previous, _fallback = _fallback, None
    if previous is not None:
        previous.close()


def current() -> Alerts:
    global _fallback
    with _lock:
        if _installed:
            return _installed[-1]
        if _fallback is None:
            try:
                _fallback = Alerts(Settings())
            except Exception as exc:  # noqa: BLE001 - the settings are broken: log-only alerts
                log.error("alert_settings_unusable", error=str(exc).splitlines()[0])
                _fallback = Alerts(Settings.model_construct(), file_sink=False)
        return _fallback


def emit_alert(
    severity: str,
    title: str,
    message: str,
    context: dict[str, Any] | None = None,
    *,
    fingerprint_keys: tuple[str, ...] | list[str] = (),
    fingerprint: str | None = None,
) -> str:
    """Raise an alert (info, warning or critical; anything else falls back to info and says
    so). Returns its fingerprint. Never raises, never waits for the network or the database."""
    try:
        return current().emit(
            severity,
            title,
            message,
            context,
            fingerprint_keys=fingerprint_keys,
            fingerprint=fingerprint,
        )
    except Exception as exc:  # noqa: BLE001 - an alert must never break its caller
        log.error("alert_emit_failed", error=str(exc), title=str(title)[:200])
        return ""


def resolve_alert(fingerprint: str) -> None:
    """The problem named ``fingerprint`` has cleared: send a resolved notice. Never raises."""
    try:
        current().resolve(fingerprint)
    except Exception as exc:  # noqa: BLE001 - an alert must never break its caller
        log.error("alert_resolve_failed", error=str(exc), fingerprint=str(fingerprint)[:64])
