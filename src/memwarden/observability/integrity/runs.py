"""Each scan, persisted: its findings, how each check went, and where the next scan continues."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select

from memwarden.db import schema
from memwarden.observability.integrity.findings import (
    CheckResult,
    Finding,
    IntegrityRun,
    RepairRecord,
    RunStatus,
)

R = schema.integrity_runs
F = schema.integrity_findings
MAX_HISTORY = 500


def save(conn: Connection, run: IntegrityRun) -> int:
    run_id = conn.execute(
        insert(R)
        .values(
            started_at=run.started_at,
            finished_at=run.finished_at,
            full=run.full,
            status=run.status,
            ledger_verified_seq=run.ledger_verified_seq,
            ledger_verified_tag=run.ledger_verified_tag,
            ledger_head_seq=run.ledger_head_seq,
            memory_high_id=run.memory_high_id,
            memory_count=run.memory_count,
            checks=_dump([c.to_dict() for c in run.checks]),
            repairs=_dump([r.to_dict() for r in run.repairs]),
            recheck_ids=_dump(run.recheck_ids),
            error=run.error,
            row_snapshot=run.row_snapshot,
            fulltext_config=run.fulltext_config,
        )
        .returning(R.c.id)
    ).scalar_one()
    if run.findings:
        conn.execute(
            insert(F),
            [
                {
                    "run_id": run_id,
                    "check_name": f.check,
                    "severity": f.severity,
                    "count": f.count,
                    "examples": _dump(list(f.examples)),
                    "message": f.message,
                }
                for f in run.findings
            ],
        )
    run.id = int(run_id)
    return run.id


def latest(conn: Connection) -> IntegrityRun | None:
    found = history(conn, 1)
    return found[0] if found else None


def history(conn: Connection, limit: int = 20) -> list[IntegrityRun]:
    """Finished runs, newest first."""
    limit = min(max(limit, 1), MAX_HISTORY)
    rows = conn.execute(
        select(R).where(R.c.finished_at.is_not(None)).order_by(R.c.id.desc()).limit(limit)
    ).all()
    findings: dict[int, list[Finding]] = {int(row.id): [] for row in rows}
    if findings:
        query = select(F).where(F.c.run_id.in_(list(findings))).order_by(F.c.id)
        for f in conn.execute(query):
            findings[int(f.run_id)].append(
                Finding.from_dict(
                    {
                        "check": f.check_name,
                        "severity": f.severity,
                        "count": f.count,
                        "examples": json.loads(f.examples),
                        "message": f.message,
                    }
                )
            )
    return [_run(row, findings[int(row.id)]) for row in rows]


def _run(row: Any, findings: list[Finding]) -> IntegrityRun:
    status: RunStatus = row.status if row.status in ("clean", "findings") else "error"
    return IntegrityRun(
        id=int(row.id),
        started_at=row.started_at,
        finished_at=row.finished_at,
        full=bool(row.full),
        status=status,
        findings=findings,
        checks=[CheckResult.from_dict(c) for c in json.loads(row.checks)],
        repairs=[RepairRecord.from_dict(r) for r in json.loads(row.repairs)],
        ledger_verified_seq=int(row.ledger_verified_seq),
        ledger_verified_tag=row.ledger_verified_tag,
        ledger_head_seq=int(row.ledger_head_seq),
        memory_high_id=int(row.memory_high_id),
        memory_count=None if row.memory_count is None else int(row.memory_count),
        recheck_ids=[int(i) for i in json.loads(row.recheck_ids)],
        error=row.error,
        row_snapshot=row.row_snapshot,
        fulltext_config=row.fulltext_config,
    )


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
