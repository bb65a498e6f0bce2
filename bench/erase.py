"""Erase latency as the store grows, both engines.

- ``erase_p95_<engine>_<rows>``: p95 of ``mw.erase`` (the row, its ledger payloads, the
  full-text index by FTS5 secure-delete, the receipt; on SQLite the non-blocking WAL scrub
  too) at 10k and 100k memories (quick: 2k and 10k). Baseline, same run and store: p95 of an
  update of a memory's content (the same row and index entry rewritten, audited).
- ``erase_growth_<engine>``: p95 at the large size over p95 at the small one; floor 2.5×
  (flat: the erase costs O(erased rows), where the old whole-index ``optimize`` grew with
  the index and, on SQLite 3.40, corrupted it after about a thousand erasures).
"""

from __future__ import annotations

import random

from sqlalchemy import select

from bench._corpus import build, bulk_load
from bench._harness import Context, Engine, Result, benchmark, percentile, timed
from memwarden.db import schema

GROWTH_FLOOR = 2.5


def _measure(ctx: Context, engine: Engine, rows: int) -> tuple[Result, float]:
    samples = ctx.size(300, 80)
    corpus = build(rows, questions=1, planted_count=1, seed=ctx.seed)
    with ctx.memwarden(engine, f"erase-{engine}-{rows}") as mw:
        with ctx.progress(f"loading {rows:,} memories into {engine}", 1) as advance:
            bulk_load(mw, corpus)
            advance(1)
        with mw.store.read() as conn:
            ids = [int(i) for i in conn.execute(select(schema.memories.c.id)).scalars()]
        rng = random.Random(ctx.seed)
        chosen = rng.sample(ids, samples * 2)
        updated, erased = chosen[:samples], chosen[samples:]
        with ctx.progress(f"erasing at {rows:,} ({engine})", samples * 2) as advance:
            baseline = []
            for memory_id in updated:
                text = mw.get(memory_id).content
                baseline.append(timed(lambda m=memory_id, t=text: mw.update(m, content=t + " v2")))
                advance(1)
            values = []
            for memory_id in erased:
                values.append(timed(lambda m=memory_id: mw.erase(m, "bench")))
                advance(1)
        pending = mw.finish_scrubs()
    p95 = percentile(values, 95) * 1000
    result = Result(
        f"erase_p95_{engine}_{rows}",
        p95,
        "ms",
        engine,
        rows,
        baseline=percentile(baseline, 95) * 1000,
        baseline_label="p95 of an audited content update, same store",
        better="lower",
        detail={
            "erase_p50_ms": percentile(values, 50) * 1000,
            "samples": samples,
            "pending_after_one_pass": pending,
        },
    )
    return result, p95


@benchmark("erase", "erase p95 at 10k and 100k memories, both engines: flat as the store grows")
def run(ctx: Context) -> list[Result]:
    small, large = ctx.size(10_000, 2_000), ctx.size(100_000, 10_000)
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("erase_growth_postgresql", "×"))
            continue
        first, p95_small = _measure(ctx, engine, small)
        second, p95_large = _measure(ctx, engine, large)
        results += [first, second]
        results.append(
            Result(
                f"erase_growth_{engine}",
                p95_large / p95_small,
                "×",
                engine,
                large,
                floor=GROWTH_FLOOR,
                floor_on="value",
                better="lower",
                detail={"small_rows": small, "large_rows": large},
            )
        )
    return results
