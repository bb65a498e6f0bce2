"""An entry as a database row: normalised (unless raw), encoded, truncated, clipped."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from memwarden.audit.oplog.encoding import encode_parts
from memwarden.audit.oplog.entry import OperationEntry
from memwarden.audit.oplog.normalise import normalise
from memwarden.db import schema

T = schema.operation_log
_LIMITS: dict[str, int] = {
    name: int(getattr(T.c[name].type, "length", 200))
    for name in ("action", "transport", "project", "actor", "error")
}


def to_row(entry: OperationEntry, *, raw: bool) -> dict[str, Any]:
    request, response, metadata = entry.request, entry.response, entry.metadata or None
    if not raw:
        request, response, metadata = normalise(request), normalise(response), normalise(metadata)
    parts = encode_parts(
        {"request": request, "response": response, "metadata": metadata}, plain=not raw
    )
    started, ended = _utc(entry.started_at), _utc(entry.ended_at)
    duration = float(entry.duration)
    if not math.isfinite(duration) or duration < 0:
        duration = max(0.0, (ended - started).total_seconds() * 1000.0)
    return {
        "action": _clip(entry.action, "action") or "unknown",
        "transport": _clip(entry.transport, "transport") or "unknown",
        "project": _clip(entry.project, "project"),
        "actor": _clip(entry.actor, "actor"),
        "started_at": started,
        "ended_at": ended,
        "duration_ms": duration,
        "error": _clip(entry.error, "error"),
        **parts,
    }


def _utc(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"a datetime is needed, not {type(moment).__name__}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _clip(value: object, column: str) -> str | None:
    """Fit a column: text, no NUL (PostgreSQL refuses it), valid UTF-8, within its length."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not (text.isascii() and "\x00" not in text):
        text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[: _LIMITS[column]]
