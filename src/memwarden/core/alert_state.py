"""The last alert of each severity, mirrored into project state (the seed's surface).

The seed keeps ``atocore/alert/last_{severity}``; memwarden keeps the same key shape in a
reserved project (``MEMWARDEN_ALERT_STATE_PROJECT``, default ``memwarden``): category
``alert``, key ``last_info`` / ``last_warning`` / ``last_critical``, the value a JSON object.
So the state API (``GET /projects/memwarden/state``) and anything reading project state see
the newest alert of each severity. Each write is an ordinary audited state mutation by the
actor ``alerts``; it runs on the alert writer's thread and is fail-open (the caller,
``Alerts``, logs a failure and carries on).
"""

from __future__ import annotations

import json

from memwarden.audit.actor import acting_as
from memwarden.core import projects
from memwarden.core.runtime import Runtime
from memwarden.errors import ConflictError, NotFoundError
from memwarden.observability.alerts import Alert

CATEGORY = "alert"
ACTOR = "alerts"
MESSAGE_CHARS = 1000


def key_of(severity: str) -> str:
    return f"last_{severity}"


def value_of(alert: Alert) -> str:
    message = alert.message
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    return json.dumps(
        {
            "severity": alert.severity,
            "title": alert.title,
            "message": message,
            "fingerprint": alert.fingerprint,
            "timestamp": alert.at.isoformat(),
            "emit_id": alert.emit_id,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def mirror(rt: Runtime, project: str, alerts: list[Alert]) -> None:
    """Write ``alert/last_{severity}`` for each alert (one per severity), creating the
    reserved project when it is missing. Raises what the store raises (the caller is
    fail-open)."""
    with acting_as(ACTOR):
        try:
            projects.state_list(rt, project, CATEGORY)
        except NotFoundError:
            try:
                projects.add(rt, project, "memwarden's own state: the last alert of each severity")
            except ConflictError:
                pass  # another process created it first
        for alert in alerts:
            projects.state_set(
                rt,
                project,
                CATEGORY,
                key_of(alert.severity),
                value_of(alert),
                source=f"alert:{alert.fingerprint}",
            )
