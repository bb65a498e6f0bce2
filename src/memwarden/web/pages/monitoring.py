"""Alerts (the last of each severity, and the history with what became of each delivery) and
Operations (the operation log's per-action statistics and latest rows, when it is enabled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from memwarden.serving.state import MW
from memwarden.web.render import PREFIX, page
from memwarden.web.routing import DashboardRoute
from memwarden.web.signin import ViewerDep

ALERT_PAGE = 100
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


@router.get("/alerts")
def alerts(
    request: Request,
    viewer: ViewerDep,
    mw: MW,
    severity: Literal["info", "warning", "critical", ""] = "",
) -> Response:
    return page(
        request,
        viewer,
        "alerts.html",
        last=mw.last_alerts(),
        feed=mw.alert_feed(ALERT_PAGE, severity or None),
        severity=severity,
        webhooks=mw.alert_webhooks(),
        dead=mw.alert_dead_letters(ALERT_PAGE),
    )


@router.get("/operations")
def operations(
    request: Request,
    viewer: ViewerDep,
    mw: MW,
    window: Annotated[Literal["1h", "24h", "7d", "all"], Query()] = "24h",
) -> Response:
    since = datetime.now(UTC) - WINDOWS[window] if window in WINDOWS else None
    return page(
        request,
        viewer,
        "operations.html",
        ops=mw.operations(since),
        window=window,
        windows=[*WINDOWS, "all"],
    )
