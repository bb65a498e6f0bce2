"""Extraction quality, extraction throughput at 10k interactions, triage list latency at 10k.

- Quality: the rule-based extractor's precision and recall on the labelled corpus
  ``tests/fixtures/extraction_corpus.jsonl`` (all of it, floors 0.8 / 0.6, the same floors
  ``tests/test_extraction_quality.py`` asserts), and on its held-out split alone (written after
  the patterns were frozen; reported, no floor): the honest estimate on unseen phrasing.
- Throughput: ``extract`` over 10k captured interactions (a mix of restatements and new
  statements), interactions per second, end to end (read, extract, deduplicate, write with
  ledger rows, move the watermark). Baseline: the same extractor over the same interactions in
  memory, with no storage at all; the ratio is the share of the extractor's own speed the
  stored pipeline keeps.
- Triage list: p95 of one queue page (50 candidates with their origins) at random cursors over
  10k candidates. Baseline: the same page through the plain memory list (no origins); floor:
  the triage page (two statements) keeps at least a third of the plain page's speed (one
  statement): ratio >= 0.33.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench._corpus import sign_memories
from bench._harness import Context, Engine, Result, benchmark, latency_ms
from memwarden import Memwarden
from memwarden.core.capture import Interaction
from memwarden.core.extraction.rules import RuleExtractor
from memwarden.core.extraction.scoring import Case, Score, evaluate, load_corpus
from memwarden.core.text import content_hash
from memwarden.db import schema

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "extraction_corpus.jsonl"
PRECISION_FLOOR = 0.8
RECALL_FLOOR = 0.6
# A triage page runs two statements (the page, then its origins) where the plain page runs
# one: it may cost at most three times as much. ~20 ms p95 is the aim on an idle machine.
TRIAGE_FLOOR = 0.33
TRIAGE_AIM_MS = 20.0
PAGE = 50
SAMPLES = 200
ENGINES: tuple[Engine, ...] = ("sqlite", "postgresql")


def _quality(name: str, score: Score, split: str, floors: bool) -> list[Result]:
    detail = {"split": split, "candidates": score.candidates, "expected": score.expected}
    return [
        Result(
            f"{name}_precision",
            score.precision,
            "share",
            "-",
            score.candidates,
            floor=PRECISION_FLOOR if floors else None,
            floor_on="value",
            detail=detail,
        ),
        Result(
            f"{name}_recall",
            score.recall,
            "share",
            "-",
            score.expected,
            floor=RECALL_FLOOR if floors else None,
            floor_on="value",
            detail=detail,
        ),
    ]


@benchmark("extraction_quality", "rule-based extractor precision/recall on the corpus", order=60)
def quality(ctx: Context) -> list[Result]:
    cases = load_corpus(CORPUS)
    extractor = RuleExtractor()
    held_out = [c for c in cases if c.split == "heldout"]
    return _quality("extraction", evaluate(extractor, cases), "all", True) + _quality(
        "extraction_heldout", evaluate(extractor, held_out), "heldout", False
    )


def _interactions(cases: list[Case], count: int) -> list[dict[str, str]]:
    """Corpus exchanges repeated: even copies verbatim (restatements reinforce), odd copies
    with a numbered detail in their first sentence (new statements)."""
    out = []
    for index in range(count):
        case = cases[index % len(cases)]
        prompt = case.prompt
        copy = index // len(cases)
        if copy % 2 == 1:
            prompt = prompt.replace(".", f" in area {copy}.", 1)
        out.append({"project": "atlas", "prompt": prompt, "response": case.response})
    return out


def _pure_rate(rows: list[dict[str, str]]) -> float:
    extractor = RuleExtractor()
    now = datetime.now(UTC)
    items = [
        Interaction(i + 1, "atlas", r["prompt"], r["response"], "", now) for i, r in enumerate(rows)
    ]
    started = time.perf_counter()
    for item in items:
        extractor.extract(item)
    return len(items) / (time.perf_counter() - started)


@benchmark(
    "extraction_throughput",
    "rule-based extract interactions/s at 10k interactions (SQLite, PostgreSQL)",
    order=61,
)
def throughput(ctx: Context) -> list[Result]:
    count = ctx.size(10_000, 2_000)
    rows = _interactions(load_corpus(CORPUS), count)
    pure = _pure_rate(rows)
    results = []
    for engine in ENGINES:
        name = f"extraction_throughput_{engine}"
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg(name, "interactions/s"))
            continue
        with ctx.memwarden(engine, "extract") as mw:
            mw.capture_lines([json.dumps(r) for r in rows])
            started = time.perf_counter()
            report = mw.extract("atlas")
            seconds = time.perf_counter() - started
        assert report.interactions == count, report.to_dict()
        results.append(
            Result(
                name,
                count / seconds,
                "interactions/s",
                engine,
                count,
                baseline=pure,
                baseline_label="the same extractor in memory, no storage",
                detail={
                    "created": len(report.created),
                    "reinforced": len(report.reinforced),
                    "seconds": seconds,
                },
            )
        )
    return results


def _load_candidates(mw: Memwarden, count: int) -> None:
    """``count`` candidates, each with the interaction it came from (bulk, no ledger rows)."""
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    with mw.store.engine.begin() as conn:
        for start in range(0, count, 2_000):
            span = range(start, min(start + 2_000, count))
            interactions = [
                {
                    "project": "atlas",
                    "prompt": f"I prefer option {i} for the build.",
                    "response": "Noted.",
                    "client": "bench",
                    "created_at": epoch + timedelta(seconds=i),
                }
                for i in span
            ]
            ids = (
                conn.execute(
                    insert(schema.interactions).returning(
                        schema.interactions.c.id, sort_by_parameter_order=True
                    ),
                    interactions,
                )
                .scalars()
                .all()
            )
            memories = [
                {
                    "project": "atlas",
                    "type": "preference",
                    "content": f"I prefer option {i} for the build.",
                    "content_hash": content_hash(f"I prefer option {i} for the build."),
                    "confidence": 0.7,
                    "status": "candidate",
                    "source_chunk_id": None,
                    "reinforcement_count": i % 4,
                    "superseded_by": None,
                    "created_at": epoch + timedelta(seconds=i),
                    "updated_at": epoch + timedelta(seconds=i),
                    "last_reinforced_at": None,
                }
                for i in span
            ]
            memory_ids = (
                conn.execute(
                    insert(schema.memories).returning(
                        schema.memories.c.id, sort_by_parameter_order=True
                    ),
                    memories,
                )
                .scalars()
                .all()
            )
            conn.execute(
                insert(schema.memory_origins),
                [
                    {
                        "memory_id": m,
                        "interaction_id": i,
                        "extractor": "rules",
                        "extractor_version": "bench",
                        "created_at": epoch,
                    }
                    for m, i in zip(memory_ids, ids, strict=True)
                ],
            )
    sign_memories(mw)  # row MACs, as memwarden's writer gives them
    if mw.store.dialect == "postgresql":
        with mw.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("memories", "memory_origins", "interactions"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


@benchmark("triage_list", "triage list page p95 with 10k candidates (SQLite, PostgreSQL)", order=62)
def triage_list(ctx: Context) -> list[Result]:
    count = ctx.size(10_000, 10_000)
    rng = random.Random(ctx.seed)
    results = []
    for engine in ENGINES:
        name = f"triage_list_p95_{engine}"
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg(name, "ms"))
            continue
        with ctx.memwarden(engine, "triage") as mw:
            _load_candidates(mw, count)
            cursors: list[int | None] = [None] + [
                rng.randint(PAGE, count) for _ in range(SAMPLES - 1)
            ]
            for cursor in cursors[:10]:  # warm-up
                mw.triage_queue(after_id=cursor, limit=PAGE)
            queue_times, plain_times = [], []
            for cursor in cursors:
                started = time.perf_counter()
                page = mw.triage_queue(after_id=cursor, limit=PAGE)
                queue_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                mw.list_memories(status="candidate", after_id=cursor, limit=PAGE)
                plain_times.append(time.perf_counter() - started)
                assert len(page) == PAGE and all(item.origins for item in page)
            size = mw.triage_size()
        queue_ms, plain_ms = latency_ms(queue_times), latency_ms(plain_times)
        results.append(
            Result(
                name,
                queue_ms["p95_ms"],
                "ms",
                engine,
                size,
                baseline=plain_ms["p95_ms"],
                baseline_label="the same page without origins",
                floor=TRIAGE_FLOOR,
                better="lower",
                aim=TRIAGE_AIM_MS,
                detail={**queue_ms, "plain_p95_ms": plain_ms["p95_ms"], "page": PAGE},
            )
        )
    return results
