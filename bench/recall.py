"""Recall and context-pack latency at 100k memories, and recall@10 on planted answers.

Baseline: the plain full ranking over the same two indexes recall searches (memories and
chunks), run on the raw driver connection with the same questions in the same run: FTS5
``MATCH 'a OR b …' ORDER BY bm25 LIMIT 10`` on SQLite, ``ts_rank`` over ``a | b …`` on
PostgreSQL. It scores every row holding any word of the question, which is what makes common
words slow. Quality: for questions with one planted answer, the share whose answer is in
memwarden's top 10, against the share in the plain full ranking's top 10.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bench._corpus import Corpus, build, bulk_load
from bench._harness import Context, Engine, Result, benchmark, latency_ms, percentile
from memwarden import Memwarden
from memwarden.core.text import content_hash, words
from memwarden.db import schema

RECALL_TARGET_MS = 20.0
QUALITY_FLOOR = 0.95
WARMUP = 20

PlainSearch = Callable[[str, str, int], list[int]]


def _sqlite_plain(mw: Memwarden) -> tuple[PlainSearch, Callable[[], None]]:
    raw: Any = mw.store.engine.raw_connection()

    def search(question: str, table: str, k: int) -> list[int]:
        fts = "memories_fts" if table == "memories" else "chunks_fts"
        match = " OR ".join('"' + w + '"' for w in dict.fromkeys(words(question)))
        sql = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY bm25({fts}) LIMIT ?"  # noqa: S608
        return [row[0] for row in raw.execute(sql, (match, k)).fetchall()]

    return search, raw.close


def _postgres_plain(mw: Memwarden) -> tuple[PlainSearch, Callable[[], None]]:
    raw: Any = mw.store.engine.raw_connection()
    raw.autocommit = True

    def search(question: str, table: str, k: int) -> list[int]:
        query = " | ".join("'" + w + "'" for w in dict.fromkeys(words(question)))
        sql = (
            f"SELECT id FROM {table}, to_tsquery('memwarden_english', %s) q "  # noqa: S608
            "WHERE content_tsv @@ q ORDER BY ts_rank(content_tsv, q) DESC LIMIT %s"
        )
        with raw.cursor() as cursor:
            cursor.execute(sql, (query, k))
            return [row[0] for row in cursor.fetchall()]

    return search, raw.close


def _add_state(mw: Memwarden, count: int = 12) -> None:
    for index in range(count):
        mw.set_state(
            "atlas", "facts", f"fact-{index}", f"value {index} of the launch plan", "bench"
        )


def _planted_ids(mw: Memwarden, corpus: Corpus) -> list[int]:
    m = schema.memories
    with mw.store.read() as conn:
        by_hash = {
            row.content_hash: int(row.id)
            for row in conn.execute(
                select(m.c.id, m.c.content_hash).where(
                    m.c.content_hash.in_([content_hash(p.answer) for p in corpus.planted])
                )
            )
        }
    return [by_hash[content_hash(p.answer)] for p in corpus.planted]


def _measure(
    ctx: Context, mw: Memwarden, corpus: Corpus, engine: Engine, rows: int
) -> list[Result]:
    plain, close = _sqlite_plain(mw) if engine == "sqlite" else _postgres_plain(mw)
    try:
        questions = corpus.questions + [p.question for p in corpus.planted]
        random.Random(ctx.seed).shuffle(questions)
        for question in questions[:WARMUP]:
            mw.recall(question, "atlas")
            mw.context(question, "atlas")
            plain(question, "memories", 10)
            plain(question, "source_chunks", 10)
        ours: list[float] = []
        ours_cpu: list[float] = []  # this process's CPU time: the whole cost on SQLite
        ours_context: list[float] = []
        base: list[float] = []
        base_memories: list[float] = []
        with ctx.progress(f"recall on {engine}", len(questions)) as advance:
            for question in questions:
                started, cpu = time.perf_counter(), time.process_time()
                mw.recall(question, "atlas")
                ours.append(time.perf_counter() - started)
                ours_cpu.append(time.process_time() - cpu)
                started = time.perf_counter()
                mw.context(question, "atlas")
                ours_context.append(time.perf_counter() - started)
                started = time.perf_counter()
                plain(question, "memories", 10)
                middle = time.perf_counter()
                plain(question, "source_chunks", 10)
                base.append(time.perf_counter() - started)
                base_memories.append(middle - started)
                advance(1)
        found_ours = found_plain = 0
        for item, answer_id in zip(corpus.planted, _planted_ids(mw, corpus), strict=True):
            hits = mw.recall(item.question, "atlas", k=10, include_chunks=False)
            found_ours += answer_id in [hit.id for hit in hits]
            found_plain += answer_id in plain(item.question, "memories", 10)
    finally:
        close()
    recall_stats, base_stats = latency_ms(ours), latency_ms(base)
    context_stats = latency_ms(ours_context)
    label = "plain FTS5 bm25" if engine == "sqlite" else "plain ts_rank"
    label += " over memories + chunks, same questions"
    shared = {"queries": len(questions), "chunks": len(corpus.chunks)}
    planted = len(corpus.planted)
    return [
        Result(
            f"recall_p95_{engine}",
            recall_stats["p95_ms"],
            "ms",
            engine,
            rows,
            baseline=base_stats["p95_ms"],
            baseline_label=label,
            floor=RECALL_TARGET_MS if engine == "sqlite" else None,
            floor_on="value",
            better="lower",
            detail={
                **shared,
                **recall_stats,
                "baseline_p50_ms": base_stats["p50_ms"],
                "baseline_memories_only_p95_ms": percentile(base_memories, 95) * 1000,
                "cpu_p95_ms": percentile(ours_cpu, 95) * 1000,
            },
        ),
        Result(
            f"context_p95_{engine}",
            context_stats["p95_ms"],
            "ms",
            engine,
            rows,
            baseline=base_stats["p95_ms"],
            baseline_label=label,
            better="lower",
            detail={**shared, **context_stats, "budget_chars": 4000},
        ),
        Result(
            f"recall_at10_{engine}",
            found_ours / planted,
            "recall@10",
            engine,
            rows,
            baseline=found_plain / planted,
            baseline_label="recall@10 of the plain full ranking on the same planted questions",
            floor=QUALITY_FLOOR,
            detail={"planted_questions": planted, "found": found_ours, "found_plain": found_plain},
        ),
    ]


@benchmark(
    "recall",
    "recall and context p50/p95 at 100k memories (SQLite, PostgreSQL) and recall@10",
    order=20,
)
def run(ctx: Context) -> list[Result]:
    rows = ctx.size(100_000, 10_000)
    corpus = build(
        rows,
        questions=ctx.size(400, 150),
        planted_count=ctx.size(100, 40),
        seed=ctx.seed,
        chunks=rows // 10,
    )
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            for name, unit in (
                ("recall_p95", "ms"),
                ("context_p95", "ms"),
                ("recall_at10", "recall@10"),
            ):
                results.append(ctx.skipped_pg(f"{name}_postgresql", unit))
            continue
        with ctx.memwarden(engine, f"recall-{engine}") as mw:
            with ctx.progress(f"loading {rows:,} memories into {engine}", 1) as advance:
                bulk_load(mw, corpus)
                _add_state(mw)
                advance(1)
            results.extend(_measure(ctx, mw, corpus, engine, rows))
    return results
