"""Hybrid recall at scale and what the embedder costs.

- ``recall_hybrid_p95``: recall p95 at 100k memories (10k quick), hybrid, in process, the
  query's embedding included. The stored vectors are written straight to the table
  (embedding 100k texts would take most of an hour here), drawn from a Gaussian with the mean
  and covariance of the local model's embeddings of a sample of the corpus's statements:
  the vector search prunes on the vectors' shape (core/vector_prune.py), so isotropic random
  vectors — its worst case, which it detects and scores in full — would not measure what real
  embeddings cost. ``detail.pruned`` says whether the matrix was reduced. Baseline:
  text-only recall of the same questions in the same run. Floor: 40 ms.
- ``create_throughput_embedded``: memories created per second with the embedder on (each
  vector written after its commit, the run ending when every vector is written), against the
  same creates with it off; ``create_acknowledged_embedded``: the same creates as the caller
  sees them (returned once committed), floor 0.5× the rate with the embedder off;
  ``ingest_throughput_embedded``: markdown files ingested per second until every chunk's
  vector is written, against the embedder off.
- ``rss_model_loaded``: resident size of a process serving the API after a recall loaded
  the model, against the same process with the embedder off.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bench._corpus import build, bulk_load, settle
from bench._harness import Context, Engine, Result, benchmark, latency_ms
from bench._vectors import Shaped
from memwarden import Memwarden
from memwarden.core import vectors
from memwarden.core.embedding import minilm
from memwarden.db import schema

P95_FLOOR_MS = 40.0
# Creates acknowledged with the embedder on, at least this share of the rate with it off.
ACKNOWLEDGED_FLOOR = 0.5
WARMUP = 20


SHAPE_SAMPLE = 2000  # statements embedded to shape the stored vectors (500 quick)


def _vectors_like_the_model(mw: Memwarden, statements: list[str], seed: int) -> int:
    """A vector for every memory, in batches, shaped like the model's (bench/_vectors.py)."""
    shaped = Shaped(statements, seed)
    m = schema.memories
    with mw.store.read() as conn:
        rows = conn.execute(select(m.c.id, m.c.project, m.c.content_hash)).all()
    now = datetime.now(UTC)
    for start in range(0, len(rows), 5000):
        part = rows[start : start + 5000]
        matrix = shaped.draw(len(part))
        stored = [
            vectors.StoredVector(int(r.id), r.project, r.content_hash, matrix[i])
            for i, r in enumerate(part)
        ]
        with mw.store.write() as unit:
            vectors.write(unit.conn, vectors.MEMORY, minilm.MODEL_ID, stored, now)
    settle(mw, "embeddings")
    return len(rows)


def _p95(ctx: Context, engine: Engine) -> list[Result]:
    rows = ctx.size(100_000, 10_000)
    corpus = build(rows, questions=ctx.size(300, 100), planted_count=0, seed=ctx.seed, chunks=0)
    with ctx.memwarden(engine, f"hybrid-{engine}", embedder="local") as mw:
        with ctx.progress(f"loading {rows:,} memories and vectors into {engine}", 1) as advance:
            bulk_load(mw, corpus)
            sample = random.Random(ctx.seed).sample(corpus.statements, ctx.size(SHAPE_SAMPLE, 500))
            _vectors_like_the_model(mw, sample, ctx.seed)
            advance(1)
        questions = list(corpus.questions)
        random.Random(ctx.seed).shuffle(questions)
        for question in questions[:WARMUP]:
            mw.recall(question, "atlas", mode="hybrid")
            mw.recall(question, "atlas", mode="text")
        hybrid: list[float] = []
        text: list[float] = []
        with ctx.progress(f"hybrid recall on {engine}", len(questions)) as advance:
            for question in questions:
                started = time.perf_counter()
                found = mw.recall_detailed(question, "atlas", mode="hybrid")
                hybrid.append(time.perf_counter() - started)
                if found.mode_used != "hybrid":
                    raise RuntimeError(f"hybrid recall fell back: {found.fallback}")
                started = time.perf_counter()
                mw.recall(question, "atlas", mode="text")
                text.append(time.perf_counter() - started)
                advance(1)
        with mw.store.read() as conn:
            matrix = vectors.INDEX.matrix(conn, vectors.MEMORY, minilm.MODEL_ID, minilm.DIMENSION)
            pruned = matrix.reduced is not None
    ours, base = latency_ms(hybrid), latency_ms(text)
    return [
        Result(
            f"recall_hybrid_p95_{engine}",
            ours["p95_ms"],
            "ms",
            engine,
            rows,
            baseline=base["p95_ms"],
            baseline_label="text-only recall, same questions, same run",
            floor=P95_FLOOR_MS,
            floor_on="value",
            better="lower",
            detail={
                **ours,
                "text_p50_ms": base["p50_ms"],
                "queries": len(questions),
                "pruned": pruned,
            },
        )
    ]


def _throughput(ctx: Context, engine: Engine) -> list[Result]:
    """Creates and ingests per second with the embedder on, against off, in one run."""
    count = ctx.size(1000, 200)
    files = ctx.size(200, 40)
    rates: dict[str, float] = {}
    for embedder in ("none", "local"):
        with ctx.memwarden(engine, f"create-{embedder}-{engine}", embedder=embedder) as mw:
            if embedder == "local":
                mw.recall("warm the model", "atlas")  # the load is not a create's cost
            started = time.perf_counter()
            for i in range(count):
                mw.remember("atlas", f"Fact number {i}: the launch window moves by {i} days")
            # The callers' own rate: each create returns once committed, vectors come after.
            rates[f"{embedder}_acknowledged"] = count / (time.perf_counter() - started)
            if not mw.wait_for_embeddings(600):
                raise RuntimeError("vectors were not written within ten minutes")
            rates[embedder] = count / (time.perf_counter() - started)
            paths = _documents(ctx, f"docs-{embedder}-{engine}", files)
            started = time.perf_counter()
            mw.ingest(paths, "atlas")
            rates[f"{embedder}_ingest_acknowledged"] = files / (time.perf_counter() - started)
            if not mw.wait_for_embeddings(600):
                raise RuntimeError("chunk vectors were not written within ten minutes")
            rates[f"{embedder}_ingest"] = files / (time.perf_counter() - started)
    detail = {key: round(value, 1) for key, value in rates.items()}
    return [
        Result(
            f"create_throughput_embedded_{engine}",
            rates["local"],
            "creates/s",
            engine,
            count,
            baseline=rates["none"],
            baseline_label="the same creates with the embedder off",
            detail={"until": "every vector written", **detail},
        ),
        # The vectors are written after the commit, by a thread: the create call itself must
        # stay close to its speed without embeddings (it shares the CPU and the GIL with that
        # thread, so some slowdown is expected on a busy machine).
        Result(
            f"create_acknowledged_embedded_{engine}",
            rates["local_acknowledged"],
            "creates/s",
            engine,
            count,
            baseline=rates["none_acknowledged"],
            baseline_label="the same creates with the embedder off, as returned to the caller",
            floor=ACKNOWLEDGED_FLOOR,
            detail=detail,
        ),
        Result(
            f"ingest_throughput_embedded_{engine}",
            rates["local_ingest"],
            "files/s",
            engine,
            files,
            baseline=rates["none_ingest"],
            baseline_label="the same files ingested with the embedder off",
            detail={"until": "every chunk vector written", **detail},
        ),
    ]


def _documents(ctx: Context, label: str, files: int) -> list[Path]:
    """Small markdown files of a few sections each (the chunks ingest embeds)."""
    folder = ctx.workdir / label
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(ctx.seed)
    words = "launch window orbit fuel budget crew review schedule risk payload".split()
    paths = []
    for i in range(files):
        sections = [
            f"## Part {j}\n\n" + " ".join(rng.choice(words) for _ in range(60)) + "."
            for j in range(4)
        ]
        path = folder / f"note-{i}.md"
        path.write_text(f"# Note {i}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fastapi.testclient import TestClient
    from memwarden import Memwarden, Settings
    from memwarden.api import create_app
    home = Path(sys.argv[1])
    settings = Settings(home=home, embedder=sys.argv[2])
    Memwarden.init(settings).close()
    with TestClient(create_app(settings=settings), base_url="http://127.0.0.1") as client:
        client.post("/projects", json={"name": "atlas"})
        client.post("/recall", json={"query": "what is the launch date"})
        rss = next(l for l in open("/proc/self/status") if l.startswith("VmRSS"))
        print(json.dumps({"rss_kb": int(rss.split()[1])}))
    """
)


def _rss(ctx: Context) -> Result:
    sizes = {}
    for embedder in ("none", "local"):
        home = ctx.workdir / f"rss-{embedder}"
        out = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(home), embedder],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        sizes[embedder] = json.loads(out.stdout.strip().splitlines()[-1])["rss_kb"] / 1024
    return Result(
        "rss_model_loaded",
        sizes["local"],
        "MB",
        "sqlite",
        0,
        baseline=sizes["none"],
        baseline_label="the same API process with the embedder off",
        better="lower",
    )


@benchmark(
    "recall_hybrid",
    "hybrid recall p95 at 100k, create throughput with embeddings on/off, RSS with the model",
    order=22,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    for engine in ("sqlite", "postgresql"):
        name: Engine = engine  # type: ignore[assignment]
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("recall_hybrid_p95_postgresql", "ms"))
            continue
        results.extend(_p95(ctx, name))
        results.extend(_throughput(ctx, name))
    results.append(_rss(ctx))
    return results
