"""What the row-MAC check costs recall (issue 14 §4: at most 3% of recall time).

Two measures in the same run, on one store per engine (SQLite; PostgreSQL, its names ending
``_postgresql``):

- ``row_mac_check_share``: the check's own cost — recomputing and comparing the MACs of the
  memories a recall serves (its k hits, read back as recall reads them), timed alone over many
  repetitions — as a share of a recall's median time. This is the figure the 3% bound is
  about; the floor is on it.
- ``recall_with_row_macs``: recall's median time with the check against recall's median time
  without it (the ranker built without its guard), interleaved question by question so that
  the machine's load falls on both alike. Noisier on a shared machine; reported, no floor.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from bench._corpus import build, bulk_load
from bench._harness import Context, Engine, Result, benchmark
from memwarden import Memwarden
from memwarden.core import recall_query
from memwarden.db import schema

SHARE_CEILING = 0.03
WARMUP = 20
K = 10


@contextmanager
def _unchecked() -> Iterator[None]:
    """Recall as it was before row MACs: the ranker carries no guard."""
    real = recall_query.make_ranker

    def without_guard(*args: Any, **kwargs: Any) -> Any:
        ranker, fallback = real(*args, **kwargs)
        return replace(ranker, guard=None), fallback

    recall_query.make_ranker = without_guard  # type: ignore[assignment]
    try:
        yield
    finally:
        recall_query.make_ranker = real  # type: ignore[assignment]


def _served_rows(mw: Memwarden, question: str) -> list[Any]:
    ids = [hit.id for hit in mw.recall(question, "atlas", k=K, include_chunks=False)]
    m = schema.memories
    with mw.store.read() as conn:
        return list(conn.execute(select(m).where(m.c.id.in_(ids))).all())


def _check_seconds(mw: Memwarden, rows: list[Any], repeats: int) -> float:
    guard = mw.runtime.guard
    started = time.perf_counter()
    for _ in range(repeats):
        for row in rows:
            if not guard.memory_ok(row):
                raise AssertionError(f"memory {row.id} fails its MAC in the bench store")
    return (time.perf_counter() - started) / repeats


@benchmark(
    "row_macs",
    "the row-MAC check's share of recall time, and recall with vs without it (SQLite, PostgreSQL)",
    order=21,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("row_mac_check_share_postgresql", "share of recall"))
            continue
        results.extend(_engine(ctx, engine))
    return results


def _engine(ctx: Context, engine: Engine) -> list[Result]:
    rows = ctx.size(100_000, 10_000)
    corpus = build(rows, questions=ctx.size(300, 100), planted_count=10, seed=ctx.seed)
    questions = list(corpus.questions)
    random.Random(ctx.seed).shuffle(questions)
    suffix = "" if engine == "sqlite" else f"_{engine}"  # SQLite's names predate the engines
    with ctx.memwarden(engine, f"row-macs-{engine}") as mw:
        bulk_load(mw, corpus)
        for question in questions[:WARMUP]:
            mw.recall(question, "atlas")
        checked: list[float] = []
        unchecked: list[float] = []
        check_costs: list[float] = []
        served = 0
        with ctx.progress("recall with and without row MACs", len(questions)) as advance:
            for index, question in enumerate(questions):
                order = (True, False) if index % 2 == 0 else (False, True)
                for with_check in order:
                    started = time.perf_counter()
                    if with_check:
                        mw.recall(question, "atlas", k=K)
                    else:
                        with _unchecked():
                            mw.recall(question, "atlas", k=K)
                    (checked if with_check else unchecked).append(time.perf_counter() - started)
                hits = _served_rows(mw, question)
                served += len(hits)
                check_costs.append(_check_seconds(mw, hits, repeats=50))
                advance(1)
    recall_p50 = statistics.median(checked)
    share = statistics.median(check_costs) / recall_p50
    return [
        Result(
            f"row_mac_check_share{suffix}",
            share,
            "share of recall",
            engine,
            rows,
            baseline=SHARE_CEILING,
            baseline_label="the issue's ceiling: 3% of recall time",
            floor=SHARE_CEILING,
            floor_on="value",
            better="lower",
            detail={
                "check_p50_us": statistics.median(check_costs) * 1e6,
                "recall_p50_ms": recall_p50 * 1000,
                "rows_checked_per_recall": served / len(questions),
                "queries": len(questions),
            },
        ),
        Result(
            f"recall_with_row_macs{suffix}",
            recall_p50 * 1000,
            "ms",
            engine,
            rows,
            baseline=statistics.median(unchecked) * 1000,
            baseline_label="recall without the row-MAC check, same questions, interleaved",
            better="lower",
            detail={
                "checked_p95_ms": sorted(checked)[int(0.95 * (len(checked) - 1))] * 1000,
                "unchecked_p95_ms": sorted(unchecked)[int(0.95 * (len(unchecked) - 1))] * 1000,
            },
        ),
    ]
