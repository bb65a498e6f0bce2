"""Mutation throughput: memwarden creates against the raw driver doing the same writes.

Both sides write into a database created by ``memwarden init`` (same tables, indexes,
full-text triggers and pragmas: WAL, ``synchronous`` as configured, foreign keys on), one
transaction per memory. The raw side does only the writes: ``BEGIN IMMEDIATE``, the memory
row (whose trigger writes its FTS5 row), ``COMMIT``. memwarden does everything a create
does: validation, the duplicate check, the row, its ledger entry, the commit. Rounds
alternate between the two sides so both see the same machine and the same database growth.
On PostgreSQL (``mutation_throughput_postgresql``) the raw side is psycopg on the same server:
the memory row (its generated tsvector and GIN entry) and ``COMMIT``, one transaction each.

Python's cyclic garbage collector is held off while the raw side runs (``collector_paused``). A
collection runs when allocations cross a threshold, and a full one traces the whole heap of
the process (~90 ms here): memwarden's creates make nearly all the allocations and all the
cyclic garbage, the raw loop makes no cycles, yet the collection they called for landed on
whichever side happened to allocate at the threshold. When it was the raw side, that round
took twice or three times as long and the ratio jumped (0.25 to 0.35 between runs). The raw
side still does all its own work; a collection its round would have triggered runs at
memwarden's next allocation instead, charged to the side that made the garbage. The rounds
are also shorter (``ROUNDS``), so both sides see the same shifts of a shared machine's load.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench._corpus import Vocabulary, statement
from bench._harness import Context, Result, benchmark
from bench._harness import raw_sqlite_connect as _connect
from memwarden.audit.fastpath import collector_paused
from memwarden.core.text import content_hash

FLOOR = 0.3
AIM = 0.5
ROUNDS = 10
INSERT = (
    "INSERT INTO memories (project, type, content, content_hash, confidence, status, "
    "source_chunk_id, reinforcement_count, superseded_by, created_at, updated_at, "
    "last_reinforced_at) VALUES (?, ?, ?, ?, ?, ?, NULL, 0, NULL, ?, ?, NULL)"
)


def _texts(count: int, seed: int, prefix: str) -> list[str]:
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    return [f"{prefix}{index}: {statement(vocab, rng)}" for index in range(count)]


def _raw_round(conn: Any, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for the raw writes of ``texts``."""
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            INSERT, ("atlas", "knowledge", text, content_hash(text), 0.6, "candidate", now, now)
        )
        conn.execute("COMMIT")
    return time.perf_counter() - started, time.process_time() - cpu


PG_INSERT = INSERT.replace("?", "%s")


def _pg_round(conn: Any, texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for the raw psycopg writes of ``texts``."""
    started, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        now = datetime.now(UTC)
        with conn.cursor() as cur:
            cur.execute(
                PG_INSERT,
                ("atlas", "knowledge", text, content_hash(text), 0.6, "candidate", now, now),
            )
        conn.commit()
    return time.perf_counter() - started, time.process_time() - cpu


@dataclass
class _Timed:
    """Wall and CPU seconds of each side over the timed rounds, and the creates each did."""

    ours_seconds: float = 0.0
    ours_cpu: float = 0.0
    raw_seconds: float = 0.0
    raw_cpu: float = 0.0
    done: int = 0


def _alternate(
    ctx: Context,
    label: str,
    mw: Any,
    raw_round: Callable[[list[str]], tuple[float, float]],
    count: int,
) -> _Timed:
    """Warm both sides, then ``ROUNDS`` rounds alternating memwarden's creates and the raw
    writes, so both see the same machine and the same database growth."""
    per_round = count // ROUNDS
    ours_texts = _texts(count, ctx.seed, "m")
    raw_texts = _texts(count, ctx.seed, "r")
    # Warm both sides (connection pools, statement caches) before timing.
    for text in ours_texts[:50]:
        mw.remember("atlas", "warm " + text)
    with collector_paused():
        raw_round(["warm " + text for text in raw_texts[:50]])
    timed = _Timed(done=per_round * ROUNDS)
    with ctx.progress(label, count * 2) as advance:
        for index in range(ROUNDS):
            part = slice(index * per_round, (index + 1) * per_round)
            started, cpu = time.perf_counter(), time.process_time()
            for text in ours_texts[part]:
                mw.remember("atlas", text)
            timed.ours_seconds += time.perf_counter() - started
            timed.ours_cpu += time.process_time() - cpu
            advance(per_round)
            with collector_paused():
                wall, used = raw_round(raw_texts[part])
            timed.raw_seconds += wall
            timed.raw_cpu += used
            advance(per_round)
    return timed


@benchmark(
    "mutations",
    "memwarden creates vs raw driver writes (sqlite3, psycopg), one transaction each",
    order=10,
)
def run(ctx: Context) -> list[Result]:
    results = [_sqlite(ctx)]
    if ctx.pg_url is None:
        results.append(ctx.skipped_pg("mutation_throughput_postgresql", "creates/s"))
    else:
        results.append(_postgres(ctx))
    return results


def _postgres(ctx: Context) -> Result:
    with (
        ctx.memwarden("postgresql", "mutations-ours") as mw,
        ctx.memwarden("postgresql", "mutations-raw") as twin,
    ):
        pooled: Any = twin.store.engine.raw_connection()
        raw = pooled.driver_connection
        try:
            timed = _alternate(
                ctx,
                "mutation throughput (PostgreSQL)",
                mw,
                lambda texts: _pg_round(raw, texts),
                ctx.size(8_000, 2_000),
            )
        finally:
            pooled.close()
    done = timed.done
    return Result(
        "mutation_throughput_postgresql",
        done / timed.ours_seconds,
        "creates/s",
        "postgresql",
        done,
        baseline=done / timed.raw_seconds,
        baseline_label="raw psycopg: memory row (tsvector, GIN entry), one transaction each",
        floor=FLOOR,
        aim=AIM,
        detail={
            "rounds": ROUNDS,
            # Client CPU only: the server's share of the work is not in these.
            "cpu_value": done / timed.ours_cpu,
            "cpu_baseline": done / timed.raw_cpu,
            "cpu_ratio": timed.raw_cpu / timed.ours_cpu,
        },
    )


def _sqlite(ctx: Context) -> Result:
    with (
        ctx.memwarden("sqlite", "mutations-ours") as mw,
        ctx.memwarden("sqlite", "mutations-raw") as twin,
    ):
        path = twin.store.engine.url.database
        assert path is not None
        synchronous = twin.settings.sqlite_synchronous
        raw = _connect(path, isolation_level=None)
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute(f"PRAGMA synchronous={synchronous}")
            raw.execute("PRAGMA busy_timeout=30000")
            timed = _alternate(
                ctx,
                "mutation throughput",
                mw,
                lambda texts: _raw_round(raw, texts),
                ctx.size(8_000, 2_000),
            )
        finally:
            raw.close()
    done = timed.done
    return Result(
        "mutation_throughput_sqlite",
        done / timed.ours_seconds,
        "creates/s",
        "sqlite",
        done,
        baseline=done / timed.raw_seconds,
        baseline_label="raw sqlite3: memory row + FTS5 row, one transaction each",
        floor=FLOOR,
        aim=AIM,
        detail={
            "synchronous": synchronous,
            "rounds": ROUNDS,
            # CPU-time rates: what the machine would give a lone process (SQLite runs
            # in-process), useful when other work shares the cores.
            "cpu_value": done / timed.ours_cpu,
            "cpu_baseline": done / timed.raw_cpu,
            "cpu_ratio": timed.raw_cpu / timed.ours_cpu,
        },
    )
