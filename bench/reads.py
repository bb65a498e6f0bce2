"""What recording who-read-what costs recall: recall with the read log on against off, in the
same run on the same database, within the operation log's budget (≤3% CPU).

Rounds of the same recall questions alternate between the read log on and off; the writer's
work (one flush per round, resolving each served memory's ledger seq and inserting the rows)
is timed apart and charged to "on".
"""

from __future__ import annotations

import time

from bench._corpus import build, bulk_load
from bench._harness import Context, Engine, Result, benchmark
from bench.oplog import OVERHEAD_FLOOR


def _overhead(ctx: Context, engine: Engine) -> Result:
    rows = ctx.size(20_000, 5_000)
    corpus = build(
        rows, questions=ctx.size(200, 100), planted_count=0, seed=ctx.seed + 18, chunks=rows // 10
    )
    questions = corpus.questions
    rounds = ctx.size(10, 5)
    cpu = {True: 0.0, False: 0.0}
    writer_cpu = 0.0
    with ctx.memwarden(engine, f"reads-overhead-{engine}") as mw:
        bulk_load(mw, corpus)
        reads = mw.reads
        for question in questions[:30]:  # warm-up, both ways
            for enabled in (True, False):
                reads.enabled = enabled
                mw.recall(question, "atlas")
        reads.flush(30)
        clock = time.process_time
        with ctx.progress(f"recall, read log on vs off, {engine}", len(questions) * rounds) as step:
            for _ in range(rounds):
                for index, question in enumerate(questions):
                    for enabled in (True, False) if index % 2 == 0 else (False, True):
                        reads.enabled = enabled
                        started = clock()
                        mw.recall(question, "atlas")
                        cpu[enabled] += clock() - started
                step(len(questions))
                started = clock()
                assert reads.flush(60)
                writer_cpu += clock() - started
        reads.enabled = True
    calls = len(questions) * rounds
    on = cpu[True] + writer_cpu
    return Result(
        f"reads_recall_overhead_{engine}",
        calls / on,
        "recalls/cpu-s",
        engine,
        rows,
        baseline=calls / cpu[False],
        baseline_label="the same recalls with the read log off, interleaved; CPU of this "
        "process, the writer's included",
        floor=OVERHEAD_FLOOR,
        detail={
            "recalls_per_side": calls,
            "cpu_overhead_pct": (on / cpu[False] - 1) * 100,
            "caller_cpu_overhead_pct": (cpu[True] / cpu[False] - 1) * 100,
            "failed": mw.reads.failed,
            "dropped": mw.reads.dropped,
        },
    )


@benchmark("reads", "who-read-what: recall overhead with the read log on vs off (≤3%)", order=41)
def run(ctx: Context) -> list[Result]:
    results = []
    engines: tuple[Engine, ...] = ("sqlite", "postgresql")
    for engine in engines:
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("reads_recall_overhead_postgresql", "recalls/cpu-s"))
            continue
        results.append(_overhead(ctx, engine))
    return results
