"""Harness runs in the ``harness_runs`` table: one row per run, its failing cases as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from memwarden.db import schema
from memwarden.observability.harness.runner import HarnessResult

H = schema.harness_runs
MAX_RECORDED_FAILURES = 500  # a run where everything fails still fits in one row


@dataclass(frozen=True)
class HarnessRun:
    id: int
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    fixtures: str
    transport: str
    total: int
    passed: int
    failures: list[dict[str, Any]]  # query, expected, missing, what came back (and any error)

    @property
    def failed(self) -> int:
        return self.total - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_ms": round(self.duration_ms, 3),
            "fixtures": self.fixtures,
            "transport": self.transport,
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "pass_rate": self.pass_rate,
            "failures": self.failures,
        }


def record(conn: Connection, result: HarnessResult, transport: str) -> HarnessRun:
    failures = result.failures
    kept = failures[:MAX_RECORDED_FAILURES]
    if len(failures) > len(kept):
        kept.append({"omitted": len(failures) - len(kept)})
    row = {
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "duration_ms": result.duration_ms,
        "fixtures": result.source,
        "transport": transport,
        "total": result.total,
        "passed": result.passed,
        "pass_rate": result.passed / result.total if result.total else 0.0,
        "failures": json.dumps(kept, ensure_ascii=False),
    }
    run_id = conn.execute(insert(H).returning(H.c.id), row).scalar_one()
    return _run({**row, "id": run_id})


def recent(conn: Connection, limit: int = 20) -> list[HarnessRun]:
    """Newest first."""
    rows = conn.execute(select(H).order_by(H.c.id.desc()).limit(max(0, limit)))
    return [_run(dict(row._mapping)) for row in rows]


def _run(row: dict[str, Any]) -> HarnessRun:
    failures = row["failures"]
    return HarnessRun(
        id=int(row["id"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=float(row["duration_ms"]),
        fixtures=row["fixtures"],
        transport=row["transport"],
        total=int(row["total"]),
        passed=int(row["passed"]),
        failures=json.loads(failures) if isinstance(failures, str) else list(failures),
    )
