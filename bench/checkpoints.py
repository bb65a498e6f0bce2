"""Signed checkpoints on a large ledger (SQLite, PostgreSQL): a checkpoint after 1k new rows, inclusion
and consistency proofs, and the full tree rebuild.

The ledger is generated as ``bench.ledger`` does (a genuine keyed chain over realistic memory
snapshots), then the tree is built once; 1k real mutations follow and the checkpoint that
covers them is timed (it must cost the new rows plus log n, not a pass over the ledger).
Baselines, same run: SHA-256 alone over the same rows' leaf bytes (what any tree over them
must at least do) for the checkpoint and the rebuild; fetching one ledger row by ``seq`` for
the proofs (what showing any row costs). On PostgreSQL the ledger is loaded with COPY by
``bench._integrity_data`` (the same keyed chain, ten rows per memory).
"""

from __future__ import annotations

import hashlib
import random
import time

from bench._harness import Context, Engine, Result, benchmark, latency_ms
from bench._integrity_data import generate_pg
from bench.ledger import _generate
from memwarden import Memwarden
from memwarden.audit import records, tree
from memwarden.tlog.merkle import consistency_proof

NEW_ROWS = 1_000


def _sha256_leaves(mw: Memwarden, first: int, last: int) -> float:
    """Seconds of SHA-256 alone over the leaf bytes of rows ``first..last``."""
    with mw.store.read() as conn:
        blobs = [tree.leaf_data(row) for row in tree.leaf_rows(conn, first, last)]
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for blob in blobs:
        sha256(b"\x00" + blob).digest()
    return time.perf_counter() - started


def _rebuild(ctx: Context, mw: Memwarden, rows: int) -> Result:
    with ctx.progress("rebuilding the tree", rows) as advance:
        done = [0]

        def progress(count: int) -> None:
            advance(count - done[0])
            done[0] = count

        report = mw.rebuild_tree(repair=True, progress=progress)
    baseline = report.size / _sha256_leaves(mw, 1, report.size)
    return Result(
        "tree_rebuild_sqlite",
        report.rows_per_second,
        "rows/s",
        "sqlite",
        report.size,
        baseline=baseline,
        baseline_label="SHA-256 alone over the same rows' leaf bytes",
        detail={"seconds": report.seconds},
    )


def _checkpoint_after_new_rows(ctx: Context, mw: Memwarden, rows: int) -> Result:
    mw.checkpoint("bench")
    with ctx.progress(f"{NEW_ROWS} new mutations", NEW_ROWS) as advance:
        for index in range(NEW_ROWS):
            mw.remember("atlas", f"checkpoint bench fact {index}")
            advance(1)
    size = mw.anchor().seq
    started = time.perf_counter()
    result = mw.checkpoint("bench")
    seconds = time.perf_counter() - started
    assert result.record.tree_size == size
    baseline = _sha256_leaves(mw, size - NEW_ROWS + 1, size)
    return Result(
        "checkpoint_after_1k_rows_sqlite",
        seconds * 1000,
        "ms",
        "sqlite",
        size,
        baseline=baseline * 1000,
        baseline_label=f"SHA-256 alone over the {NEW_ROWS} new rows' leaf bytes",
        better="lower",
        detail={"new_rows": NEW_ROWS, "tree_size": size},
    )


def _proofs(ctx: Context, mw: Memwarden) -> list[Result]:
    size = mw.anchor().seq
    rng = random.Random(ctx.seed + 20)
    sample = [rng.randint(1, size) for _ in range(ctx.size(300, 100))]
    ours: list[float] = []
    base: list[float] = []
    hashes = 0
    document_bytes = 0
    for seq in sample:
        started = time.perf_counter()
        document = mw.prove(seq)
        ours.append(time.perf_counter() - started)
        hashes += len(document["proof"])
        document_bytes += len(str(document["proof"]))
        started = time.perf_counter()
        with mw.store.read() as conn:
            records.at_seq(conn, seq)
        base.append(time.perf_counter() - started)
    stats, base_stats = latency_ms(ours), latency_ms(base)
    inclusion = Result(
        "inclusion_proof_p95_sqlite",
        stats["p95_ms"],
        "ms",
        "sqlite",
        size,
        baseline=base_stats["p95_ms"],
        baseline_label="one ledger row fetched by seq (audit.records.at_seq)",
        better="lower",
        detail={
            **stats,
            "mean_hashes": hashes / len(sample),
            "mean_proof_bytes": 32 * hashes / len(sample),
            "mean_hex_json_bytes": document_bytes / len(sample),
        },
    )
    cons: list[float] = []
    for _ in range(ctx.size(100, 50)):
        old = rng.randint(1, size - 1)
        started = time.perf_counter()
        with mw.store.read() as conn:
            proof = consistency_proof(old, size, tree.StoredTree(conn, size).subtree)
        cons.append(time.perf_counter() - started)
        assert proof
    cons_stats = latency_ms(cons)
    consistency = Result(
        "consistency_proof_p95_sqlite",
        cons_stats["p95_ms"],
        "ms",
        "sqlite",
        size,
        baseline=base_stats["p95_ms"],
        baseline_label="one ledger row fetched by seq (audit.records.at_seq)",
        better="lower",
        detail=cons_stats,
    )
    return [inclusion, consistency]


@benchmark(
    "checkpoints",
    "checkpoint after 1k new rows, inclusion/consistency proofs, tree rebuild at 1M rows "
    "(SQLite, PostgreSQL)",
    order=45,
)
def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("checkpoint_after_1k_rows_postgresql", "s"))
            continue
        results.extend(_engine(ctx, engine))
    return results


def _engine(ctx: Context, engine: Engine) -> list[Result]:
    rows = ctx.size(1_000_000, 10_000)
    with ctx.memwarden(engine, f"checkpoints-{engine}") as mw:
        with ctx.progress(f"generating {rows:,} ledger rows", rows) as advance:
            if engine == "sqlite":
                path = mw.store.engine.url.database
                assert path is not None
                _generate(path, mw.ledger.key, mw.anchor(), rows, rows // 10, ctx.seed, advance)
            else:
                generate_pg(mw, rows // 10, lambda n: advance(n * 10), ledger_rows=rows)
        mw.reset_witness()
        rebuild = _rebuild(ctx, mw, rows)
        checkpoint = _checkpoint_after_new_rows(ctx, mw, rows)
        results = [checkpoint, *_proofs(ctx, mw), rebuild]
    for result in results:  # the helpers name SQLite's results
        result.name = result.name.replace("_sqlite", f"_{engine}")
        result.engine = engine
    return results
