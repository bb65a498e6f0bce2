"""The scan: every check over one consistent read of the database, the run persisted, alerts
raised.

Checks run in order inside one read transaction (REPEATABLE READ on PostgreSQL, a read
snapshot on SQLite), each under a savepoint: a check that fails is recorded as an error with
its message and the others still run, since one broken check must not hide what the rest find.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

from memwarden.audit import records
from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.observability.integrity import (
    audit_gaps,
    engine,
    fulltext,
    ledger,
    notify,
    relational,
    rowmacs,
    runs,
    state_gaps,
)
from memwarden.observability.integrity.context import (
    ChainAccess,
    CheckOutcome,
    CheckSpec,
    ScanContext,
    current_snapshot,
)
from memwarden.observability.integrity.findings import (
    CheckResult,
    CheckStatus,
    IntegrityRun,
    RepairRecord,
    run_status,
)

log = structlog.get_logger(__name__)

# (check name, checks done, checks in all): called before each check and once at the end.
Progress = Callable[[str, int, int], None]

RELATIONAL_CHECKS = (
    CheckSpec("chunk_refs", relational.check_chunk_refs),
    CheckSpec("orphan_chunks", relational.check_orphan_chunks),
    CheckSpec("orphan_state", relational.check_orphan_state),
    CheckSpec("duplicates", relational.check_duplicates),
    CheckSpec("supersede_chains", relational.check_supersede_chains),
)
LEDGER_CHECK = CheckSpec("ledger_chain", ledger.check_ledger_chain)
AUDIT_CHECK = CheckSpec("audit_gaps", audit_gaps.check_audit_gaps)
STATE_CHECK = CheckSpec("state_gaps", state_gaps.check_state_gaps)
ROW_MAC_CHECK = CheckSpec(rowmacs.CHECK, rowmacs.check_row_macs)
FULLTEXT_CHECK = CheckSpec(fulltext.CHECK, fulltext.check_fulltext)
SQLITE_CHECKS = (
    CheckSpec("sqlite_pages", engine.check_sqlite_pages),
    CheckSpec("sqlite_foreign_keys", engine.check_sqlite_foreign_keys),
    FULLTEXT_CHECK,
)
POSTGRES_CHECKS = (CheckSpec("pg_amcheck", engine.check_pg_amcheck), FULLTEXT_CHECK)


def checks_for(dialect: str) -> tuple[CheckSpec, ...]:
    engine_checks = SQLITE_CHECKS if dialect == "sqlite" else POSTGRES_CHECKS
    return (
        *RELATIONAL_CHECKS,
        LEDGER_CHECK,
        AUDIT_CHECK,
        STATE_CHECK,
        ROW_MAC_CHECK,
        *engine_checks,
    )


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """One read transaction. SQLite's is rolled back (a scan writes nothing there, and a
    damaged file may refuse even to commit a read); PostgreSQL's is committed, for the amcheck
    extension a scan may have been allowed to create."""
    # A connection lost under the scan is "database unreachable" (an alert, one clear line),
    # not SQLAlchemy's PendingRollbackError from every check after it.
    with store.faults_named(), store.connect() as conn:
        if not store.is_sqlite:
            conn.execution_options(isolation_level="REPEATABLE READ")
        transaction = conn.begin()
        try:
            yield conn
        except BaseException:
            transaction.rollback()
            raise
        if store.is_sqlite:
            transaction.rollback()
        else:
            transaction.commit()


def scan(
    store: Store,
    chain: ChainAccess,
    *,
    full: bool = False,
    amcheck_create: bool = False,
    progress: Progress | None = None,
    repairs: list[RepairRecord] | None = None,
    checks: tuple[CheckSpec, ...] | None = None,
) -> IntegrityRun:
    """Run every check, persist the run and raise its alerts. ``repairs``: those made just
    before this scan (it is the rescan of ``--fix``), kept with the run."""
    started_at = datetime.now(UTC)
    specs = checks if checks is not None else checks_for(store.dialect)
    results: list[CheckResult] = []
    outcomes: dict[str, CheckOutcome] = {}
    with snapshot(store) as conn:
        previous = runs.latest(conn)
        head = records.head(conn)
        memories = schema.memories
        high_id, memory_count = conn.execute(
            select(func.coalesce(func.max(memories.c.id), 0), func.count()).select_from(memories)
        ).one()
        ctx = ScanContext(
            conn=conn,
            full=full,
            previous=previous,
            chain=chain,
            amcheck_create=amcheck_create,
            ledger_head_seq=head[0] if head else 0,
            memory_high_id=int(high_id),
            memory_count=int(memory_count),
            row_snapshot=current_snapshot(conn),
        )
        for index, spec in enumerate(specs):
            if progress is not None:
                progress(spec.name, index, len(specs))
            result, outcome = _run_check(ctx, spec)
            results.append(result)
            if outcome is not None:
                outcomes[spec.name] = outcome
    if progress is not None:
        progress("done", len(specs), len(specs))
    run = _assemble(ctx, started_at, results, outcomes, repairs or [])
    with store.write() as unit:
        runs.save(unit.conn, run)
    log.info(
        "integrity_scan_finished",
        run_id=run.id,
        status=run.status,
        full=run.full,
        findings={f.check: f.count for f in run.findings},
        seconds=run.seconds,
    )
    notify.announce(run)
    return run


def _run_check(ctx: ScanContext, spec: CheckSpec) -> tuple[CheckResult, CheckOutcome | None]:
    started = time.perf_counter()
    try:
        with ctx.conn.begin_nested():
            outcome = spec.run(ctx)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the connection is gone: no check after this one can run, nor the run be kept
        return _failed(spec, started, exc)
    except Exception as exc:  # noqa: BLE001 - one failing check is recorded; the rest still run
        return _failed(spec, started, exc)
    seconds = time.perf_counter() - started
    found = sum(f.count for f in outcome.findings)
    if outcome.skipped is not None:
        return CheckResult(
            spec.name, "skipped", seconds, outcome.scanned, 0, outcome.skipped
        ), outcome
    status: CheckStatus = "findings" if outcome.findings else "ok"
    return CheckResult(spec.name, status, seconds, outcome.scanned, found), outcome


def _failed(
    spec: CheckSpec, started: float, exc: Exception
) -> tuple[CheckResult, CheckOutcome | None]:
    """One failing check is recorded; the rest still run."""
    seconds = time.perf_counter() - started
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    log.error(
        "integrity_check_failed", check=spec.name, error_type=type(exc).__name__, error=message
    )
    return CheckResult(spec.name, "error", seconds, detail=f"{type(exc).__name__}: {message}"), None


def _assemble(
    ctx: ScanContext,
    started_at: datetime,
    results: list[CheckResult],
    outcomes: dict[str, CheckOutcome],
    repairs: list[RepairRecord],
) -> IntegrityRun:
    findings = [f for outcome in outcomes.values() for f in outcome.findings]
    previous = ctx.previous
    chain = outcomes.get(LEDGER_CHECK.name)
    if chain is not None and chain.verified_seq is not None:
        verified_seq, verified_tag = chain.verified_seq, chain.verified_tag
    elif previous is not None:
        verified_seq, verified_tag = previous.ledger_verified_seq, previous.ledger_verified_tag
    else:
        verified_seq, verified_tag = 0, None
    gaps = outcomes.get(AUDIT_CHECK.name)
    return IntegrityRun(
        id=None,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        full=ctx.full,
        status=run_status(findings, results),
        findings=findings,
        checks=results,
        repairs=repairs,
        ledger_verified_seq=verified_seq,
        ledger_verified_tag=verified_tag,
        ledger_head_seq=ctx.ledger_head_seq,
        memory_high_id=ctx.memory_high_id,
        memory_count=ctx.memory_count,
        recheck_ids=gaps.recheck_ids if gaps is not None else [],
        row_snapshot=ctx.row_snapshot,
        fulltext_config=ctx.fulltext_config,
    )
