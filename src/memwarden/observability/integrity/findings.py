"""What a scan reports: findings, how each check went, repairs, and the run as a whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Severity = Literal["warning", "critical"]
CheckStatus = Literal["ok", "findings", "skipped", "error"]
RunStatus = Literal["clean", "findings", "error"]
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
MAX_EXAMPLES = 20

Example = int | str


@dataclass(frozen=True)
class Finding:
    """One kind of drift: how many, a few examples (ids, rows or messages), and what it means."""

    check: str
    severity: Severity
    count: int
    examples: tuple[Example, ...]
    message: str

    @classmethod
    def of(cls, check: str, severity: Severity, found: Sequence[Example], message: str) -> Finding:
        return cls(check, severity, len(found), tuple(found[:MAX_EXAMPLES]), message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "count": self.count,
            "examples": list(self.examples),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        severity: Severity = "critical" if data["severity"] == "critical" else "warning"
        return cls(
            str(data["check"]),
            severity,
            int(data["count"]),
            tuple(data.get("examples") or ()),
            str(data["message"]),
        )


@dataclass(frozen=True)
class CheckResult:
    """How one check went: ``scanned`` is how many rows (or items) it examined."""

    name: str
    status: CheckStatus
    seconds: float
    scanned: int = 0
    found: int = 0
    detail: str | None = None  # why it was skipped, or the error that stopped it

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 6),
            "scanned": self.scanned,
            "found": self.found,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        status = data["status"]
        assert status in ("ok", "findings", "skipped", "error")
        return cls(
            str(data["name"]),
            status,
            float(data["seconds"]),
            int(data.get("scanned") or 0),
            int(data.get("found") or 0),
            data.get("detail"),
        )


@dataclass(frozen=True)
class RepairRecord:
    """One repair ``--fix`` made (or, with ``--dry-run``, would make)."""

    check: str
    target: Example
    action: str
    note: str
    applied: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepairRecord:
        return cls(
            str(data["check"]),
            data["target"],
            str(data["action"]),
            str(data["note"]),
            bool(data["applied"]),
            data.get("error"),
        )


@dataclass
class IntegrityRun:
    """One scan, as persisted. ``ledger_verified_seq`` is how far the chain is known sound."""

    id: int | None
    started_at: datetime
    finished_at: datetime | None
    full: bool
    status: RunStatus
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    repairs: list[RepairRecord] = field(default_factory=list)
    ledger_verified_seq: int = 0
    ledger_verified_tag: str | None = None
    ledger_head_seq: int = 0
    memory_high_id: int = 0
    recheck_ids: list[int] = field(default_factory=list)
    error: str | None = None
    # PostgreSQL: the scan's snapshot ("xmin:xmax:running,..."): rows written by
    # transactions it could not see are new to the next scan; and the digest of the text
    # search configurations its stored vectors were compared with.
    row_snapshot: str | None = None
    fulltext_config: str | None = None
    # The memories the scan saw (None: a run made before 0023_integrity_memory_count).
    memory_count: int | None = None

    @property
    def clean(self) -> bool:
        return self.status == "clean"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def check_seconds(self) -> dict[str, float]:
        return {check.name: check.seconds for check in self.checks}

    def finding(self, check: str) -> Finding | None:
        return next((f for f in self.findings if f.check == check), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": round(self.seconds, 6) if self.seconds is not None else None,
            "full": self.full,
            "status": self.status,
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
            "repairs": [r.to_dict() for r in self.repairs],
            "ledger_verified_seq": self.ledger_verified_seq,
            "error": self.error,
        }


@dataclass
class IntegrityReport:
    """What ``integrity_check`` returns: the run that decides the outcome (with ``--fix``, the
    rescan after the repairs), the scan before the repairs, and the repairs themselves."""

    run: IntegrityRun
    before_repair: IntegrityRun | None = None
    repairs: list[RepairRecord] = field(default_factory=list)
    dry_run: bool = False

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def findings(self) -> list[Finding]:
        return self.run.findings

    @property
    def checks(self) -> list[CheckResult]:
        return self.run.checks

    @property
    def full(self) -> bool:
        return self.run.full

    @property
    def clean(self) -> bool:
        return self.run.clean

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings, 2 the scan (or part of it) could not run."""
        return {"clean": 0, "findings": 1, "error": 2}[self.run.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "dry_run": self.dry_run,
            "repairs": [r.to_dict() for r in self.repairs],
            "before_repair": self.before_repair.to_dict() if self.before_repair else None,
        }


def run_status(findings: list[Finding], checks: list[CheckResult]) -> RunStatus:
    if any(check.status == "error" for check in checks):
        return "error"
    return "findings" if findings else "clean"
