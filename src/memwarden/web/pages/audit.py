"""The audit explorer: the ledger newest first, filtered by actor, action, project, entity and
time range, a page at a time; the chain's status, and (admin) a full verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from memwarden.core.service import Memwarden
from memwarden.errors import InvalidInputError, MemwardenError
from memwarden.serving.params import ISO_DATETIME, MAX_ID
from memwarden.serving.state import MW
from memwarden.web.render import PREFIX, page
from memwarden.web.routing import DashboardRoute
from memwarden.web.signin import CsrfField, ViewerDep, check_csrf, need
from memwarden.web.viewer import Viewer

PAGE = 50
ACTIONS = (
    "created", "updated", "promoted", "auto_promoted", "rejected", "invalidated", "superseded",
    "reinforced", "expired", "reverted", "erased", "captured", "state_set", "state_deleted",
    "deleted", "revoked",
)  # fmt: skip
ENTITY_TYPES = ("memory", "project", "project_state", "document", "interaction", "api_key")
Text = Annotated[str, Query(max_length=200)]

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)


def _moment(text: str, name: str) -> datetime | None:
    """A datetime-local field (or any ISO 8601 date-time): no offset means UTC."""
    text = text.strip()
    if not text:
        return None
    if not ISO_DATETIME.match(text):
        raise InvalidInputError(f"{name}: expected a date and time like 2026-05-01T12:00")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # 2026-13-45; a year-1 time east of UTC
        raise InvalidInputError(f"{name}: {text!r} is not a date and time in range") from exc


def _render(
    request: Request,
    viewer: Viewer,
    mw: Memwarden,
    filters: dict[str, str],
    before: int | None,
    full_check: Any = None,
) -> Response:
    entries = mw.recent(
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        project=filters["project"] or None,
        entity_type=filters["entity_type"] or None,
        since=_moment(filters["since"], "since"),
        until=_moment(filters["until"], "until"),
        before_seq=before,
        limit=PAGE + 1,
    )
    older = entries[PAGE - 1].seq if len(entries) > PAGE else None
    active = {k: v for k, v in filters.items() if v}
    try:
        check, check_error = mw.ledger_check(), None
    except MemwardenError as exc:  # the status panel's whole point is to show this
        check, check_error = None, str(exc)
    return page(
        request,
        viewer,
        "audit.html",
        entries=entries[:PAGE],
        filters=filters,
        older_url=f"?{urlencode({**active, 'before': older})}" if older else None,
        newest_url=f"?{urlencode(active)}" if before is not None else None,
        actions=ACTIONS,
        entity_types=ENTITY_TYPES,
        projects=[p.name for p in mw.list_projects()],
        check=check,
        check_error=check_error,
        full_check=full_check,
    )


@router.get("/audit")
def explorer(
    request: Request,
    viewer: ViewerDep,
    mw: MW,
    actor: Text = "",
    action: Text = "",
    project: Text = "",
    entity_type: Text = "",
    since: Text = "",
    until: Text = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    filters = {
        "actor": actor.strip(),
        "action": action.strip(),
        "project": project.strip(),
        "entity_type": entity_type.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    return _render(request, viewer, mw, filters, before)


@router.post("/audit/verify")
def verify_chain(request: Request, viewer: ViewerDep, mw: MW, csrf: CsrfField) -> Response:
    """Walk the whole chain (admin): seconds at a million rows."""
    check_csrf(viewer, csrf)
    need(viewer, "admin", "verifying the whole chain")
    report = mw.verify()
    filters = dict.fromkeys(("actor", "action", "project", "entity_type", "since", "until"), "")
    return _render(request, viewer, mw, filters, None, full_check=report)
