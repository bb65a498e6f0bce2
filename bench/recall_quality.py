"""Recall quality: recall@1, recall@5 and MRR of text, semantic and hybrid recall on the
evaluation set of ``_recall_eval_data`` (532 memories, 512 questions: lexical, paraphrase,
morphology, multi-answer), on both engines, tuning and held-out people reported apart.

Baseline: full-text recall (stemmed) on the same questions in the same run. Floors: hybrid
paraphrase recall@5 ≥ 0.85 (held-out people), and hybrid lexical recall@5 not below text's.

``python -m bench.recall_quality --tune`` sweeps the fusion (centring share, text coverage gate,
weight) on the tuning people only (SQLite) and prints r@1/r@5/MRR per kind.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench._harness import Context, Engine, Result, bench_settings, benchmark
from bench._recall_eval_data import Query, memories, queries
from memwarden import Memwarden
from memwarden.core import recall_fusion, recall_query, recall_rank, vectors
from memwarden.core.text import content_terms

MODES = ("text", "semantic", "hybrid")
KINDS = ("lexical", "paraphrase", "morphology", "multi")
PARAPHRASE_FLOOR = 0.85


def load(mw: Memwarden) -> dict[str, int]:
    mw.add_project("people")
    ids = {}
    for content in memories():
        ids[content] = mw.remember("people", content, status="active").memory.id
    if not mw.wait_for_embeddings(1800):
        raise RuntimeError("the vectors of the evaluation set were not written in time")
    return ids


def _scores(ranked: list[int], answers: set[int]) -> tuple[float, float, float]:
    """(recall@1, recall@5, reciprocal rank): recall@k is the share of the answers in the top k."""
    r1 = len(answers.intersection(ranked[:1])) / min(len(answers), 1)
    r5 = len(answers.intersection(ranked[:5])) / len(answers)
    rr = next((1.0 / (i + 1) for i, item in enumerate(ranked) if item in answers), 0.0)
    return r1, r5, rr


def evaluate(
    mw: Memwarden, ids: dict[str, int], qs: Iterable[Query], mode: str, weight: float | None = None
) -> dict[tuple[str, str], dict[str, float]]:
    """Per (split, kind): mean recall@1, recall@5, MRR and the count, for one mode."""
    rt = mw.runtime
    sums: dict[tuple[str, str], list[float]] = {}
    for q in qs:
        terms = content_terms(q.text)
        ranker, fallback = recall_query.make_ranker(rt, q.text, terms, mode)
        if fallback is not None:
            raise RuntimeError(f"the embedder is unavailable: {fallback}")
        if weight is not None:
            ranker = replace(ranker, semantic_weight=weight)
        with rt.read() as conn:
            hits = recall_rank.rank(conn, ranker, vectors.MEMORY, 10, "people", None)
        r1, r5, rr = _scores([h.id for h in hits], {ids[a] for a in q.answers})
        for key in ((q.split, q.kind), (q.split, "all")):
            acc = sums.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            acc[0] += r1
            acc[1] += r5
            acc[2] += rr
            acc[3] += 1
    return {
        key: {"r1": a[0] / a[3], "r5": a[1] / a[3], "mrr": a[2] / a[3], "n": a[3]}
        for key, a in sums.items()
    }


def _round(table: dict[tuple[str, str], dict[str, float]]) -> dict[str, Any]:
    return {
        f"{split}/{kind}": {k: round(v, 3) for k, v in row.items()}
        for (split, kind), row in sorted(table.items())
    }


@benchmark(
    "recall_quality",
    "recall@1/@5 and MRR of text, semantic and hybrid recall on the evaluation set",
    order=21,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    qs = queries()
    for engine in ("sqlite", "postgresql"):
        engine_name: Engine = engine  # type: ignore[assignment]
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("recall_quality_paraphrase_r5_postgresql", "recall@5"))
            continue
        with ctx.memwarden(engine_name, f"quality-{engine}", embedder="local") as mw:
            with ctx.progress(f"embedding the evaluation set on {engine}", 1) as advance:
                ids = load(mw)
                advance(1)
            tables = {}
            with ctx.progress(f"asking {len(qs)} questions × 3 modes on {engine}", 3) as advance:
                for mode in MODES:
                    tables[mode] = evaluate(mw, ids, qs, mode)
                    advance(1)
        detail = {mode: _round(table) for mode, table in tables.items()}
        rows = len(ids)
        for split in ("held_out", "tune"):
            hybrid, text = tables["hybrid"], tables["text"]
            results.append(
                Result(
                    f"recall_quality_paraphrase_r5_{split}_{engine}",
                    hybrid[(split, "paraphrase")]["r5"],
                    "recall@5",
                    engine,
                    rows,
                    baseline=text[(split, "paraphrase")]["r5"],
                    baseline_label="full-text recall, same paraphrased questions",
                    floor=PARAPHRASE_FLOOR,
                    floor_on="value",
                    detail=detail if split == "held_out" else {},
                )
            )
            results.append(
                Result(
                    f"recall_quality_lexical_r5_{split}_{engine}",
                    hybrid[(split, "lexical")]["r5"],
                    "recall@5",
                    engine,
                    rows,
                    baseline=text[(split, "lexical")]["r5"],
                    baseline_label="full-text recall, same lexical questions",
                    floor=1.0,  # hybrid never below text on questions in the memory's words
                )
            )
            results.append(
                Result(
                    f"recall_quality_all_mrr_{split}_{engine}",
                    hybrid[(split, "all")]["mrr"],
                    "MRR",
                    engine,
                    rows,
                    baseline=text[(split, "all")]["mrr"],
                    baseline_label="full-text recall, every question",
                )
            )
    return results


def tune() -> None:
    """The fusion swept on the tuning people only (SQLite); held-out never read: the share of
    the neighbourhood's mean taken out of the meaning score, the text coverage gate and the
    weight of meaning (module constants and the setting, patched for the sweep)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = bench_settings(home, f"sqlite:///{home / 'memwarden.db'}", embedder="local")
        with Memwarden.init(settings) as mw:
            ids = load(mw)
            tuning = [q for q in queries() if q.split == "tune"]
            print("centre gate weight  " + "  ".join(f"{k[:5]:>14}" for k in (*KINDS, "all")))
            saved = recall_fusion.CENTRE_SHARE, recall_fusion.TEXT_COVERAGE_GATE
            try:
                for centre in (0.0, 0.6, 0.8, 1.0):
                    for gate in (0.0, 0.75):
                        for weight in (0.7, 0.8, 0.9, 1.0):
                            recall_fusion.CENTRE_SHARE, recall_fusion.TEXT_COVERAGE_GATE = (
                                centre,
                                gate,
                            )
                            table = evaluate(mw, ids, tuning, "hybrid", weight)
                            cells = [
                                "{r1:.2f}/{r5:.2f}/{mrr:.2f}".format(**table[("tune", k)])
                                for k in (*KINDS, "all")
                            ]
                            print(
                                f"{centre:>6} {gate:>4} {weight:>6}  "
                                + "  ".join(f"{c:>14}" for c in cells)
                            )
            finally:
                recall_fusion.CENTRE_SHARE, recall_fusion.TEXT_COVERAGE_GATE = saved


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tune", action="store_true")
    if parser.parse_args().tune:
        tune()
