"""Nightly runs in ``nightly_runs`` and ``nightly_steps``: a row when a run starts, one per step
as it ends, and the run's outcome when it finishes.

A run is ``running`` until it finishes as ``ok`` (no step failed) or ``failed``. A run that
never finished (its process was killed) is marked ``abandoned`` by the next run, which can only
start once it holds the run lock, so nothing else can still be running then.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select, update

from memwarden.db import schema
from memwarden.errors import NotFoundError

R, S = schema.nightly_runs, schema.nightly_steps
StepStatus = Literal["ok", "failed", "skipped"]
STEP_STATUSES: tuple[StepStatus, ...] = ("ok", "failed", "skipped")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class StepRecord:
    name: str
    position: int
    status: StepStatus
    started_at: datetime
    duration_ms: float
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            "counts": self.counts,
            "error": self.error,
        }


@dataclass(frozen=True)
class NightlyRun:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str  # running | ok | failed | abandoned
    trigger: str  # cli | scheduler | library | ...
    owner: str  # host:pid of the process that ran it
    duration_ms: float | None
    failed_steps: int
    steps: tuple[StepRecord, ...] = ()

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "trigger": self.trigger,
            "owner": self.owner,
            "duration_ms": round(self.duration_ms, 3) if self.duration_ms is not None else None,
            "failed_steps": self.failed_steps,
            "steps": [s.to_dict() for s in self.steps],
        }


def begin(conn: Connection, trigger: str, owner: str, now: datetime) -> int:
    """A new run, ``running``; runs left ``running`` by a dead process become ``abandoned``.
    Only call while holding the run lock."""
    conn.execute(
        update(R).where(R.c.status == "running").values(status="abandoned", finished_at=now)
    )
    row = {
        "started_at": now,
        "status": "running",
        "trigger": trigger[:16],
        "owner": owner[:300],
        "failed_steps": 0,
    }
    return int(conn.execute(insert(R).returning(R.c.id), row).scalar_one())


def add_step(conn: Connection, run_id: int, step: StepRecord) -> None:
    conn.execute(
        insert(S),
        {
            "run_id": run_id,
            "position": step.position,
            "name": step.name,
            "status": step.status,
            "started_at": step.started_at,
            "duration_ms": step.duration_ms,
            "counts": json.dumps(step.counts, ensure_ascii=False, default=str),
            "error": step.error[:MAX_ERROR_CHARS] if step.error else None,
        },
    )


def finish(conn: Connection, run_id: int, finished_at: datetime, duration_ms: float) -> None:
    failed = int(
        conn.execute(
            select(func.count()).select_from(S).where(S.c.run_id == run_id, S.c.status == "failed")
        ).scalar_one()
    )
    conn.execute(
        update(R)
        .where(R.c.id == run_id)
        .values(
            status="failed" if failed else "ok",
            finished_at=finished_at,
            duration_ms=duration_ms,
            failed_steps=failed,
        )
    )


def recent(conn: Connection, limit: int = 20) -> list[NightlyRun]:
    """Newest first, each with its steps in order."""
    rows = conn.execute(select(R).order_by(R.c.id.desc()).limit(max(0, limit))).all()
    return _with_steps(conn, rows)


def get(conn: Connection, run_id: int) -> NightlyRun:
    rows = conn.execute(select(R).where(R.c.id == run_id)).all()
    if not rows:
        raise NotFoundError(f"nightly run {run_id} not found")
    return _with_steps(conn, rows)[0]


def running(conn: Connection) -> NightlyRun | None:
    rows = conn.execute(
        select(R).where(R.c.status == "running").order_by(R.c.id.desc()).limit(1)
    ).all()
    return _with_steps(conn, rows)[0] if rows else None


def _with_steps(conn: Connection, rows: Sequence[Any]) -> list[NightlyRun]:
    ids = [row.id for row in rows]
    steps: dict[int, list[StepRecord]] = {run_id: [] for run_id in ids}
    if ids:
        for row in conn.execute(
            select(S).where(S.c.run_id.in_(ids)).order_by(S.c.run_id, S.c.position)
        ):
            steps[row.run_id].append(
                StepRecord(
                    name=row.name,
                    position=row.position,
                    status=row.status,
                    started_at=row.started_at,
                    duration_ms=float(row.duration_ms),
                    counts=json.loads(row.counts),
                    error=row.error,
                )
            )
    return [
        NightlyRun(
            id=int(row.id),
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            trigger=row.trigger,
            owner=row.owner,
            duration_ms=float(row.duration_ms) if row.duration_ms is not None else None,
            failed_steps=int(row.failed_steps),
            steps=tuple(steps[row.id]),
        )
        for row in rows
    ]
