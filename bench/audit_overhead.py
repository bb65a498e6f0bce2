"""What the ledger costs: audited against unaudited mutation throughput, in one run.

The same lifecycle mix runs with the ledger on and, for the baseline only, with
``Ledger.enabled = False``: create a candidate, promote it, update its content, reinforce it
(four mutations, each one transaction). Rounds alternate between the two so both share the
machine, the database and its growth. On PostgreSQL eight threads write at once, so the
chain's lock is contended as it would be under several API workers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench._corpus import Vocabulary, statement
from bench._harness import Context, Engine, Result, benchmark
from memwarden import Memwarden

FLOOR_SQLITE = 0.7
FLOOR_PG = 0.6  # eight writer threads (issue 21)
ROUNDS = 6
MUTATIONS_PER_UNIT = 4
WRITERS_PG = 8
MIX = "create, promote, update, reinforce"


def _unit(mw: Memwarden, text: str) -> None:
    memory = mw.remember("atlas", text).memory
    mw.promote(memory.id)
    mw.update(memory.id, content=text + " (revised)")
    mw.reinforce(memory.id)


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    return [f"u{index}: {statement(vocab, rng)}" for index in range(count)]


def _serial(mw: Memwarden, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        _unit(mw, text)
    return time.perf_counter() - started


def _concurrent(mw: Memwarden, texts: list[str], writers: int) -> float:
    """All writers start together; the clock stops when the last one ends."""
    shares = [texts[i::writers] for i in range(writers)]
    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def work(share: list[str]) -> None:
        barrier.wait()
        try:
            for text in share:
                _unit(mw, text)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


@dataclass
class Rates:
    audited: float  # mutations per second, wall clock
    unaudited: float
    mutations: int
    audited_cpu: float  # mutations per CPU second of this process (all its threads)
    unaudited_cpu: float


def _measure(
    ctx: Context, engine: Engine, units: int, run_round: Callable[[Memwarden, list[str]], float]
) -> Rates:
    """Mutations per second, audited and unaudited, over alternating rounds."""
    per_round = units // ROUNDS
    texts = _texts(per_round * ROUNDS * 2 + 40, ctx.seed + 4)
    wall = {True: 0.0, False: 0.0}
    cpu = {True: 0.0, False: 0.0}
    with ctx.memwarden(engine, f"audit-overhead-{engine}") as mw:
        run_round(mw, texts[-40:-20])  # warm-up, audited
        mw.ledger.enabled = False
        run_round(mw, texts[-20:])
        with ctx.progress(f"audited vs unaudited on {engine}", per_round * ROUNDS * 2) as advance:
            for index in range(ROUNDS):
                chunk = texts[index * 2 * per_round : (index * 2 + 2) * per_round]
                # Alternate which side goes first, so neither always inherits the other's state.
                order = (True, False) if index % 2 == 0 else (False, True)
                for enabled, part in zip(
                    order, (chunk[:per_round], chunk[per_round:]), strict=True
                ):
                    mw.ledger.enabled = enabled
                    started = time.process_time()
                    wall[enabled] += run_round(mw, part)
                    cpu[enabled] += time.process_time() - started
                    advance(per_round)
        mw.ledger.enabled = True
    mutations = per_round * ROUNDS * MUTATIONS_PER_UNIT
    return Rates(
        mutations / wall[True],
        mutations / wall[False],
        mutations,
        mutations / cpu[True],
        mutations / cpu[False],
    )


def _detail(rates: Rates, writers: int) -> dict[str, object]:
    return {
        "mix": MIX,
        "writers": writers,
        "cpu_value": rates.audited_cpu,
        "cpu_baseline": rates.unaudited_cpu,
        "cpu_ratio": rates.audited_cpu / rates.unaudited_cpu,
    }


@benchmark("audit_overhead", "audited vs unaudited mutation throughput (ledger on / off)", order=30)
def run(ctx: Context) -> list[Result]:
    label = "same mutations with the ledger switched off"
    rates = _measure(ctx, "sqlite", ctx.size(3_000, 600), _serial)
    results = [
        Result(
            "audit_overhead_sqlite",
            rates.audited,
            "mutations/s",
            "sqlite",
            rates.mutations,
            baseline=rates.unaudited,
            baseline_label=label,
            floor=FLOOR_SQLITE,
            detail=_detail(rates, 1),
        )
    ]
    name = f"audit_overhead_postgresql_{WRITERS_PG}w"
    if ctx.pg_url is None:
        results.append(ctx.skipped_pg(name, "mutations/s"))
        return results
    rates = _measure(
        ctx,
        "postgresql",
        ctx.size(2_400, 480),
        lambda mw, texts: _concurrent(mw, texts, WRITERS_PG),
    )
    # CPU time of this process says little here: the server does the work elsewhere.
    detail = {"mix": MIX, "writers": WRITERS_PG}
    results.append(
        Result(
            name,
            rates.audited,
            "mutations/s",
            "postgresql",
            rates.mutations,
            baseline=rates.unaudited,
            baseline_label=label,
            floor=FLOOR_PG,
            detail=detail,
        )
    )
    return results
