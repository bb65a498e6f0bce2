"""Metadata filter and rank_by cost (issue 17): recall and listing with and without a
``where``, and recall with ``rank_by``, in process, full text (no embedder), one engine.

    PYTHONPATH=src python -m bench.metadata_filter [--memories 5000] [--database-url URL]

Every tenth memory is tagged ``team=core``; queries share words with every memory, so the
filter must reach past the first k. Prints p50/p95 in ms of each variant, measured in one run
(compare the ratios: absolute figures move with the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from memwarden import Memwarden, Settings

WORDS = ["launch", "fuel", "engine", "crew", "orbit", "payload", "window", "budget"]


def _timed(call: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mw-bench-meta-"))
    settings = Settings(home=home, embedder="none", database_url=args.database_url)
    with Memwarden.init(settings) as mw:
        mw.add_project("p")
        for i in range(args.memories):
            a, b = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
            mw.remember(
                "p",
                f"note {i}: the {a} {b} figure is {i}",
                status="active",
                metadata={"team": "core" if i % 10 == 0 else "ops", "n": i},
            )
        variants: dict[str, Callable[[], object]] = {
            "recall": lambda: mw.recall("launch fuel figure", "p", k=10),
            "recall where team=core": lambda: mw.recall(
                "launch fuel figure", "p", k=10, where=["team=core"]
            ),
            "recall rank_by recency": lambda: mw.recall(
                "launch fuel figure", "p", k=10, rank_by="recency"
            ),
            "list 50": lambda: mw.list_memories(project="p", limit=50),
            "list 50 where team=core": lambda: mw.list_memories(
                project="p", limit=50, where=["team=core"]
            ),
        }
        print(f"{args.memories} memories, {mw.store.engine.dialect.name}, {args.runs} runs each")
        for name, call in variants.items():
            call()  # warm
            p50, p95 = _timed(call, args.runs)
            print(f"{name:<26} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")


if __name__ == "__main__":
    main()
