"""The integrity scan at 1M memories, on SQLite and on PostgreSQL.

- ``integrity_relational_sqlite``: the relational checks (dangling chunk references, orphan
  chunks, orphan state, duplicates, supersede chains) in memories per second; floor 300k/s.
  Baseline, same run: raw ``sqlite3`` doing one dangling-reference and one duplicate query.
- ``integrity_ledger_verify_sqlite`` and ``integrity_replay_sqlite``: the full scan's chain
  verification and ledger replay in ledger rows per second (reported).
- ``integrity_incremental_sqlite``: a default (incremental) scan after 1,000 changes made
  through the library, in seconds; floor 1 s on the work that follows the changes (ledger and
  audit gaps). The whole scan's time, relational and engine checks included, is in the detail.
- ``integrity_incremental_vs_full_<engine>``: that whole incremental scan against the whole
  full scan of the same store (goal on PostgreSQL: at most a tenth of it).
The same four, ``_postgresql``, on PostgreSQL (data loaded with COPY, the baseline through the
raw driver).
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench._harness import Context, Engine, Result, benchmark
from bench._harness import raw_sqlite_connect as _connect
from bench._integrity_data import generate, generate_pg
from memwarden import Memwarden
from memwarden.observability.integrity import IntegrityReport

RELATIONAL = ("chunk_refs", "orphan_chunks", "orphan_state", "duplicates", "supersede_chains")
INCREMENTAL = ("ledger_chain", "audit_gaps")
ENGINE = ("sqlite_pages", "sqlite_foreign_keys", "pg_amcheck")
RELATIONAL_FLOOR = 300_000.0
INCREMENTAL_FLOOR_S = 1.0
CHANGES = 1_000
BASELINE_SQL = (
    "SELECT count(*) FROM memories m LEFT JOIN source_chunks c ON c.id = m.source_chunk_id "
    "WHERE m.source_chunk_id IS NOT NULL AND c.id IS NULL",
    "SELECT count(*) FROM (SELECT 1 FROM memories WHERE status = 'active' "
    "GROUP BY project, type, content_hash HAVING count(*) > 1) AS duplicated",
)
INCREMENTAL_GOAL = 10.0  # full / incremental on PostgreSQL (SQLite checks every row MAC)


def _seconds(report: IntegrityReport, names: tuple[str, ...]) -> float:
    return sum(c.seconds for c in report.checks if c.name in names)


def _scanned(report: IntegrityReport, name: str) -> tuple[int, float]:
    check = next(c for c in report.checks if c.name == name)
    return check.scanned, check.seconds


def _raw_rate(mw: Memwarden, memories: int) -> float:
    """Memories per second of the raw queries (best of three, like a warm scan)."""
    raw: Any = (
        _connect(mw.store.engine.url.database)
        if mw.store.is_sqlite
        else mw.store.engine.raw_connection()
    )
    conn = raw if mw.store.is_sqlite else raw.driver_connection
    try:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for sql in BASELINE_SQL:
                conn.execute(sql).fetchone()
            best = min(best, time.perf_counter() - started)
    finally:
        raw.close()
    return memories / best


def _changes(mw: Memwarden, memories: int, seed: int) -> None:
    """1,000 mutations through the library: reinforcements, promotions and edits."""
    rng = random.Random(seed)
    active = [i for i in range(1, memories + 1) if i % 10 <= 5]
    candidates = [i for i in range(1, memories + 1) if i % 10 in (6, 7)]
    picked_active = rng.sample(active, CHANGES * 7 // 10)
    for i, memory_id in enumerate(picked_active):
        if i % 2:
            mw.update(memory_id, content=f"Edited statement {memory_id} for the bench")
        else:
            mw.reinforce(memory_id)
    for memory_id in rng.sample(candidates, CHANGES - len(picked_active)):
        mw.promote(memory_id)


@benchmark(
    "integrity",
    "integrity scan at 1M memories (SQLite, PostgreSQL): relational memories/s, ledger verify "
    "and replay rows/s, incremental scan after 1k changes against the full scan",
    order=45,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("integrity_postgresql", "memories/s"))
            continue
        results.extend(_engine(ctx, engine))
    return results


def _engine(ctx: Context, engine: Engine) -> list[Result]:
    memories = ctx.size(1_000_000, 20_000)
    with ctx.memwarden(engine, "integrity") as mw:
        with ctx.progress(f"generating {memories:,} memories", memories) as advance:
            if engine == "sqlite":
                path = mw.store.engine.url.database
                assert path is not None
                ledger_rows = generate(path, mw.ledger.key, mw.anchor(), memories, advance)
            else:
                ledger_rows = generate_pg(mw, memories, advance)
        mw.reset_witness()
        ctx.note(f"full integrity scan ({engine})")
        full = mw.integrity_check(full=True)
        if not full.clean:
            raise RuntimeError(f"the generated database is not clean: {full.to_dict()['findings']}")
        relational_s = _seconds(full, RELATIONAL)
        baseline = _raw_rate(mw, memories)
        verified, verify_s = _scanned(full, "ledger_chain")
        replayed, replay_s = _scanned(full, "audit_gaps")
        ctx.note(f"{CHANGES} changes")
        _changes(mw, memories, ctx.seed)
        incremental = mw.integrity_check()
        if not incremental.clean:
            raise RuntimeError(f"the incremental scan is not clean: {incremental.to_dict()}")
    per_check = {f"full_{c.name}_s": c.seconds for c in full.checks}
    later = {f"incremental_{c.name}_s": c.seconds for c in incremental.checks}
    raw = "raw sqlite3" if engine == "sqlite" else "raw psycopg"
    return [
        Result(
            f"integrity_relational_{engine}",
            memories / relational_s,
            "memories/s",
            engine,
            memories,
            baseline=baseline,
            baseline_label=f"{raw}: one dangling-reference and one duplicate query",
            floor=RELATIONAL_FLOOR,
            floor_on="value",
            detail={"seconds": relational_s, **per_check},
        ),
        Result(
            f"integrity_ledger_verify_{engine}",
            verified / verify_s,
            "rows/s",
            engine,
            ledger_rows,
            detail={"seconds": verify_s, "rows_checked": verified},
        ),
        Result(
            f"integrity_replay_{engine}",
            replayed / replay_s,
            "rows/s",
            engine,
            ledger_rows,
            detail={"seconds": replay_s, "rows_replayed": replayed, "memories": memories},
        ),
        Result(
            f"integrity_incremental_{engine}",
            _seconds(incremental, INCREMENTAL),
            "s",
            engine,
            memories,
            floor=INCREMENTAL_FLOOR_S,
            floor_on="value",
            better="lower",
            detail={
                "changes": CHANGES,
                "whole_scan_s": incremental.run.seconds,
                "relational_s": _seconds(incremental, RELATIONAL),
                "engine_s": _seconds(incremental, ENGINE),
                "ledger_rows_verified": _scanned(incremental, "ledger_chain")[0],
                "ledger_rows_replayed": _scanned(incremental, "audit_gaps")[0],
                **later,
            },
        ),
        Result(
            f"integrity_incremental_vs_full_{engine}",
            incremental.run.seconds,
            "s",
            engine,
            memories,
            baseline=full.run.seconds,
            baseline_label="the whole full scan of the same store, same run",
            floor=INCREMENTAL_GOAL if engine == "postgresql" else None,
            better="lower",
            detail={"changes": CHANGES, "full_s": full.run.seconds},
        ),
    ]
