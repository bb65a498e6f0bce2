"""The integrity scan (spec 2.4): drift found, persisted and alerted on. Detection only; the
repairs of ``--fix`` live in ``core/repair.py``.

Modules: findings (what a scan reports), context (what a check is given), relational (broken
references, duplicates, supersede chains), ledger (chain breaks), audit_gaps (the replay of each
memory's ledger), engine (SQLite's and PostgreSQL's own checks), runs (persistence), notify
(alerts) and scan (the orchestrator).
"""

from memwarden.observability.integrity.context import ChainAccess
from memwarden.observability.integrity.findings import (
    CheckResult,
    Finding,
    IntegrityReport,
    IntegrityRun,
    RepairRecord,
)
from memwarden.observability.integrity.scan import Progress, scan

__all__ = [
    "ChainAccess",
    "CheckResult",
    "Finding",
    "IntegrityReport",
    "IntegrityRun",
    "Progress",
    "RepairRecord",
    "scan",
]
