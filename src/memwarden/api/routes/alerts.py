"""Alerts over HTTP, for the admin: raise one (a script's or a monitor's alert reaches every
sink like the server's own), and list the dead letters (deliveries given up)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from memwarden.api.models import Body
from memwarden.observability.alerts import severity_of
from memwarden.serving.auth import Admin
from memwarden.serving.errors import responses
from memwarden.serving.state import MW

router = APIRouter(tags=["alerts"])


class AlertIn(Body):
    severity: str = Field(
        default="info",
        description="info, warning or critical (anything else is raised as info, and says so)",
    )
    title: str = Field(min_length=1, max_length=500)
    message: str = Field(default="", max_length=64 * 1024)
    context: dict[str, str] = Field(default_factory=dict)


class AlertRaised(BaseModel):
    fingerprint: str
    severity: Literal["info", "warning", "critical"]


class DeadLetterOut(BaseModel):
    id: int
    alert_id: int
    title: str | None
    state: Literal["failed", "dead"]
    target: str
    target_kind: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str
    updated_at: str


@router.post(
    "/admin/alerts", status_code=202, response_model=AlertRaised, responses=responses(401, 403)
)
def raise_alert(body: AlertIn, caller: Admin, mw: MW) -> dict[str, Any]:
    """Raise an alert: the log, the alerts file, the database and every webhook (delivered in
    the background: 202)."""
    level, _unknown = severity_of(body.severity)
    fingerprint = mw.alerts.emit(body.severity, body.title, body.message, dict(body.context))
    return {"fingerprint": fingerprint, "severity": level}


@router.get("/admin/alerts/dead", response_model=list[DeadLetterOut], responses=responses(401, 403))
def dead_letters(caller: Admin, mw: MW) -> list[dict[str, Any]]:
    """Deliveries given up (failed: a permanent answer; dead: the retry budget ran out)."""
    return [
        {k: v for k, v in d.to_dict().items() if k in DeadLetterOut.model_fields}
        for d in mw.alert_dead_letters(1000)
    ]
