"""The integrity scan at 1M memories on SQLite.

- ``integrity_relational_sqlite``: the relational checks (dangling chunk references, orphan
  chunks, orphan state, duplicates, supersede chains) in memories per second; floor 300k/s.
  Baseline, same run: raw ``sqlite3`` doing one dangling-reference and one duplicate query.
- ``integrity_ledger_verify_sqlite`` and ``integrity_replay_sqlite``: the full scan's chain
  verification and ledger replay in ledger rows per second (reported).
- ``integrity_incremental_sqlite``: a default (incremental) scan after 1,000 changes made
  through the library, in seconds; floor 1 s on the work that follows the changes (ledger and
  audit gaps). The whole scan's time, relational and engine checks included, is in the detail.
"""

from __future__ import annotations

import random
import time

from bench._harness import Context, Result, benchmark
from bench._harness import raw_sqlite_connect as _connect
from bench._integrity_data import generate
from memwarden import Memwarden
from memwarden.observability.integrity import IntegrityReport

RELATIONAL = ("chunk_refs", "orphan_chunks", "orphan_state", "duplicates", "supersede_chains")
INCREMENTAL = ("ledger_chain", "audit_gaps")
ENGINE = ("sqlite_pages", "sqlite_foreign_keys")
RELATIONAL_FLOOR = 300_000.0
INCREMENTAL_FLOOR_S = 1.0
CHANGES = 1_000
BASELINE_SQL = (
    "SELECT count(*) FROM memories m LEFT JOIN source_chunks c ON c.id = m.source_chunk_id "
    "WHERE m.source_chunk_id IS NOT NULL AND c.id IS NULL",
    "SELECT count(*) FROM (SELECT 1 FROM memories WHERE status = 'active' "
    "GROUP BY project, type, content_hash HAVING count(*) > 1)",
)


def _seconds(report: IntegrityReport, names: tuple[str, ...]) -> float:
    return sum(c.seconds for c in report.checks if c.name in names)


def _scanned(report: IntegrityReport, name: str) -> tuple[int, float]:
    check = next(c for c in report.checks if c.name == name)
    return check.scanned, check.seconds


def _raw_rate(path: str, memories: int) -> float:
    """Memories per second of the raw queries (best of three, like a warm scan)."""
    conn = _connect(path)
    try:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for sql in BASELINE_SQL:
                conn.execute(sql).fetchone()
            best = min(best, time.perf_counter() - started)
    finally:
        conn.close()
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
    "integrity scan at 1M memories (SQLite): relational memories/s, ledger verify and replay "
    "rows/s, incremental scan after 1k changes",
    order=45,
)
def run(ctx: Context) -> list[Result]:
    memories = ctx.size(1_000_000, 20_000)
    with ctx.memwarden("sqlite", "integrity") as mw:
        path = mw.store.engine.url.database
        assert path is not None
        with ctx.progress(f"generating {memories:,} memories", memories) as advance:
            ledger_rows = generate(path, mw.ledger.key, mw.anchor(), memories, advance)
        mw.reset_witness()
        ctx.note("full integrity scan")
        full = mw.integrity_check(full=True)
        if not full.clean:
            raise RuntimeError(f"the generated database is not clean: {full.to_dict()['findings']}")
        relational_s = _seconds(full, RELATIONAL)
        baseline = _raw_rate(path, memories)
        verified, verify_s = _scanned(full, "ledger_chain")
        replayed, replay_s = _scanned(full, "audit_gaps")
        ctx.note(f"{CHANGES} changes")
        _changes(mw, memories, ctx.seed)
        incremental = mw.integrity_check()
        if not incremental.clean:
            raise RuntimeError(f"the incremental scan is not clean: {incremental.to_dict()}")
    per_check = {f"full_{c.name}_s": c.seconds for c in full.checks}
    later = {f"incremental_{c.name}_s": c.seconds for c in incremental.checks}
    return [
        Result(
            "integrity_relational_sqlite",
            memories / relational_s,
            "memories/s",
            "sqlite",
            memories,
            baseline=baseline,
            baseline_label="raw sqlite3: one dangling-reference and one duplicate query",
            floor=RELATIONAL_FLOOR,
            floor_on="value",
            detail={"seconds": relational_s, **per_check},
        ),
        Result(
            "integrity_ledger_verify_sqlite",
            verified / verify_s,
            "rows/s",
            "sqlite",
            ledger_rows,
            detail={"seconds": verify_s, "rows_checked": verified},
        ),
        Result(
            "integrity_replay_sqlite",
            replayed / replay_s,
            "rows/s",
            "sqlite",
            ledger_rows,
            detail={"seconds": replay_s, "rows_replayed": replayed, "memories": memories},
        ),
        Result(
            "integrity_incremental_sqlite",
            _seconds(incremental, INCREMENTAL),
            "s",
            "sqlite",
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
    ]
