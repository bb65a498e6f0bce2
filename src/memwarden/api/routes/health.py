"""Health: is the database reachable, at which schema, and where the ledger head is."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from memwarden.api.models import HealthOut
from memwarden.audit import records
from memwarden.db import migrate
from memwarden.db.faults import DAMAGED, LOCKED
from memwarden.errors import MemwardenError, first_line
from memwarden.observability.alerts import outbox
from memwarden.observability.faults import active_faults
from memwarden.serving.state import backend_of

log = structlog.get_logger(__name__)
router = APIRouter(tags=["operations"])


@lru_cache(maxsize=1)
def _code_revisions() -> frozenset[str]:
    """The schema this code expects: read from the migration scripts once per process."""
    return migrate.head_revisions()


def _probe(request: Request) -> dict[str, Any]:
    mw = backend_of(request).get()
    with mw.store.read() as conn:
        conn.execute(text("SELECT 1"))
        head = records.head(conn)
        dead_letters = outbox.dead_letter_fault(conn)
    current = migrate.current_revisions(mw.store)
    faults = [fault.as_dict() for fault in active_faults()]
    if dead_letters is not None:
        faults.append(dead_letters)
    return {
        "status": "degraded" if faults else "ok",
        "database": "reachable",
        "engine": mw.store.dialect,
        "schema_revisions": sorted(current),
        "schema_current": current == _code_revisions(),
        "ledger_head": {"seq": head[0], "tag": head[1]} if head else {"seq": 0, "tag": None},
        "faults": faults,
        "recall": mw.recall_health(),
    }


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database is not reachable"}},
)
def health(request: Request) -> Any:
    """Open to everyone (no key): for load balancers and probes."""
    try:
        return _probe(request)
    except (MemwardenError, SQLAlchemyError, OSError) as exc:
        message = _reason(exc)
        log.warning("health_unavailable", error=message, error_type=type(exc).__name__)
        # Reached, but not usable (a table missing, the write lock held): "reachable", the
        # reason in the error. Anything else (a server or file that could not be reached or
        # opened, every pooled connection in use, an error nobody named) is not known reached.
        reached = getattr(exc, "kind", None) in (DAMAGED, LOCKED)
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "reachable" if reached else "unreachable",
                "faults": [fault.as_dict() for fault in active_faults()],
                "error": {"code": getattr(exc, "code", "storage_unavailable"), "message": message},
            },
            status_code=503,
        )


# SQLAlchemy ends some messages with a link to its documentation ("(Background on this error
# at: https://sqlalche.me/e/20/e3q8)"): a code for its developers, not for an operator.
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def _reason(exc: BaseException) -> str:
    """The error's first line: the driver's own message when SQLAlchemy wraps one."""
    return _BACKGROUND.sub("", first_line(exc)).strip() or type(exc).__name__
