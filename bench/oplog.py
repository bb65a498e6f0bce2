"""What the operation log costs: recall with the log on against off (same run, same database),
the cost of one ``oplog.log`` call, and the writer's throughput in rows per second.

Overhead: rounds of the same recall questions alternate between the log on (every action
allowed) and off; an "on" round's time includes waiting for its writer to store every row, so
the background work is charged to the log. ``oplog.log``: per-call time over many calls while
the writer drains the queue (the realistic case: it competes for the interpreter). Writer:
entries shaped like real recall results, queued at once, timed until the last is stored;
baseline, the same rows already normalised and encoded, inserted in the same batches.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from sqlalchemy import insert

from bench._corpus import build, bulk_load
from bench._harness import Context, Engine, Result, benchmark, percentile
from memwarden.audit.oplog import OperationEntry, OpLog
from memwarden.audit.oplog.log import BATCH_SIZE
from memwarden.audit.oplog.rows import to_row
from memwarden.core.recall import Hit
from memwarden.db import schema

OVERHEAD_FLOOR = 0.97  # at most 3% slower with the log on
LOG_P99_TARGET_US = 20.0


def _recall_overhead(ctx: Context, engine: Engine) -> Result:
    """Each question is recalled twice in a row, log on and log off (alternating which goes
    first), so both sides share the machine's state; the writer is kept asleep during the
    recalls and its work (one flush per round) is timed apart and charged to the log."""
    rows = ctx.size(20_000, 5_000)
    corpus = build(
        rows, questions=ctx.size(200, 100), planted_count=0, seed=ctx.seed + 9, chunks=rows // 10
    )
    questions = corpus.questions
    rounds = ctx.size(10, 5)
    cpu = {True: 0.0, False: 0.0}
    wall = {True: 0.0, False: 0.0}
    writer_cpu = writer_wall = 0.0
    with ctx.memwarden(engine, f"oplog-overhead-{engine}") as mw:
        bulk_load(mw, corpus)
        mw.oplog.close()
        oplog = mw.oplog = OpLog(mw.settings, mw.store, interval_s=3600)  # wakes on flush only
        for question in questions[:30]:  # warm-up, both ways
            for enabled in (True, False):
                oplog.all_actions = enabled
                mw.recall(question, "atlas")
        oplog.flush(30)
        written_before = oplog.written
        clock, cpu_clock = time.perf_counter, time.process_time
        with ctx.progress(f"recall, log on vs off, {engine}", len(questions) * rounds) as advance:
            for _ in range(rounds):
                for index, question in enumerate(questions):
                    for enabled in (True, False) if index % 2 == 0 else (False, True):
                        oplog.all_actions = enabled
                        started, started_cpu = clock(), cpu_clock()
                        mw.recall(question, "atlas")
                        cpu[enabled] += cpu_clock() - started_cpu
                        wall[enabled] += clock() - started
                advance(len(questions))
                started, started_cpu = clock(), cpu_clock()
                assert oplog.flush(60)  # the writer stores this round's rows
                writer_cpu += cpu_clock() - started_cpu
                writer_wall += clock() - started
        oplog.all_actions = False
        logged = oplog.written - written_before
        dropped = oplog.dropped
    calls = len(questions) * rounds
    on_cpu, on_wall = cpu[True] + writer_cpu, wall[True] + writer_wall
    note = "" if engine == "sqlite" else "; the server's side of the inserts is not in it"
    return Result(
        f"oplog_recall_overhead_{engine}",
        calls / on_cpu,
        "recalls/cpu-s",
        engine,
        rows,
        baseline=calls / cpu[False],
        baseline_label=(
            "the same recalls with the log off, interleaved; CPU time of this process, "
            f"the writer's included{note}"
        ),
        floor=OVERHEAD_FLOOR,
        detail={
            "recalls_per_side": calls,
            "rows_logged": logged,
            "dropped": dropped,
            "cpu_overhead_pct": (on_cpu / cpu[False] - 1) * 100,
            "caller_cpu_overhead_pct": (cpu[True] / cpu[False] - 1) * 100,
            "writer_cpu_us_per_row": writer_cpu / max(logged, 1) * 1e6,
            "wall_overhead_pct": (on_wall / wall[False] - 1) * 100,
            "wall_on_recalls_per_s": calls / on_wall,
            "wall_off_recalls_per_s": calls / wall[False],
        },
    )


def _hits(rng: random.Random) -> list[Hit]:
    return [
        Hit(
            "memory",
            rng.randrange(1, 10**6),
            round(rng.random(), 6),
            "statement " * 8,
            "atlas",
            {
                "memory_id": 1,
                "type": "knowledge",
                "status": "active",
                "confidence": 0.6,
                "reinforcement_count": 0,
                "source_chunk_id": None,
                "document": None,
                "updated_at": "2026-01-01T00:00:00+00:00",
            },
        )
        for _ in range(10)
    ]


def _entries(count: int, seed: int) -> list[OperationEntry]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    hits = _hits(rng)
    return [
        OperationEntry(
            "recall",
            "bench",
            "atlas",
            now,
            now,
            {
                "query": "what is the launch window of the rocket?",
                "project": "atlas",
                "types": None,
                "k": 10,
                "include_chunks": True,
            },
            hits,
            actor="bench",
            duration_ms=rng.random() * 5,
        )
        for _ in range(count)
    ]


def _log_cost(ctx: Context) -> Result:
    calls = ctx.size(200_000, 50_000)
    rounds = 20
    per_round = calls // rounds
    entries = _entries(per_round, ctx.seed)
    costs: list[float] = []
    timed_costs: list[float] = []
    with ctx.memwarden("sqlite", "oplog-log-cost") as mw:
        oplog = mw.oplog
        oplog.all_actions = True
        log = oplog.log
        clock = time.perf_counter_ns
        with ctx.progress("oplog.log() cost", calls) as advance:
            for _ in range(rounds):
                for entry in entries:  # the writer drains meanwhile: it competes with the caller
                    started = clock()
                    log(entry)
                    costs.append(clock() - started)
                oplog.flush(60)
                for _ in range(per_round // 10):
                    started = clock()
                    with oplog.timed("recall", project="atlas", request=None) as op:
                        op.response = None
                    timed_costs.append(clock() - started)
                oplog.flush(60)
                advance(per_round)
        dropped = oplog.dropped
    us = [c / 1000 for c in costs]
    timed_us = [c / 1000 for c in timed_costs]
    return Result(
        "oplog_log_p99",
        percentile(us, 99),
        "µs",
        "sqlite",
        len(us),
        floor=LOG_P99_TARGET_US,
        floor_on="value",
        better="lower",
        detail={
            "p50_us": percentile(us, 50),
            "p999_us": percentile(us, 99.9),
            "max_us": max(us),
            "timed_block_p50_us": percentile(timed_us, 50),
            "timed_block_p99_us": percentile(timed_us, 99),
            "dropped": dropped,
        },
    )


def _writer(ctx: Context, engine: Engine) -> Result:
    count = ctx.size(100_000, 20_000)
    entries = _entries(count, ctx.seed + 1)
    with ctx.memwarden(engine, f"oplog-writer-{engine}") as mw:
        oplog = OpLog(mw.settings, mw.store, queue_size=count + 1)
        started = time.perf_counter()
        for entry in entries:
            oplog.log(entry)
        assert oplog.flush(600), "the writer did not finish"
        seconds = time.perf_counter() - started
        assert oplog.written == count and oplog.dropped == 0, oplog.counters()
        oplog.close()
        # Baseline: the same rows prepared in advance, only inserted.
        prepared = [to_row(entry, raw=False) for entry in entries]
        started = time.perf_counter()
        for start in range(0, count, BATCH_SIZE):
            with mw.store.write() as unit:
                unit.conn.execute(
                    insert(schema.operation_log), prepared[start : start + BATCH_SIZE]
                )
        baseline = time.perf_counter() - started
    return Result(
        f"oplog_writer_{engine}",
        count / seconds,
        "rows/s",
        engine,
        count,
        baseline=count / baseline,
        baseline_label=f"the same rows pre-encoded, inserted {BATCH_SIZE} per transaction",
        detail={"batch_size": BATCH_SIZE, "seconds": seconds},
    )


@benchmark(
    "oplog",
    "operation log: recall overhead on vs off (≤3%), oplog.log p99 (≤20 µs), writer rows/s",
    order=40,
)
def run(ctx: Context) -> list[Result]:
    results = [_log_cost(ctx)]
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("oplog_recall_overhead_postgresql", "recalls/s"))
            results.append(ctx.skipped_pg("oplog_writer_postgresql", "rows/s"))
            continue
        results.append(_recall_overhead(ctx, engine))
        results.append(_writer(ctx, engine))
    return results
