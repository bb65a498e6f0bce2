"""The scale size (``python -m bench.run --scale``, ``make bench-scale``): 1M memories and a 10M
row ledger, on PostgreSQL (and on SQLite, to compare one file with one server).

The store is bulk-loaded by ``bench/_integrity_data.py`` with rows from ``bench/_scale_rows.py``,
byte for byte memwarden's canonical encoding, tags and row MACs (COPY on PostgreSQL, the same
rows through executemany on SQLite; docs/scaling.md says how it stays fast and faithful): each memory's created/promoted/superseded/rejected rows, and reinforcements of the
active ones up to the ledger's size. It must then pass ``verify`` and a full integrity scan,
which are measured too. Then, at that size: recall p95, history p95 (one memory's ledger),
the operator's "recent rows of one actor" p95, dashboard overview and memory page p95, 8
writers' mutation throughput (create, promote, update, reinforce each), and an incremental
integrity scan after those and 1,000 more changes, against the full scan (goal: ≤ 10% of it).

``--scale-fraction F`` (or ``MEMWARDEN_BENCH_SCALE=F``) loads F of the size: a shared or small
machine cannot load 10M rows in its time; every result says the size it ran at.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from bench._harness import Context, Engine, Result, benchmark, latency_ms
from bench._integrity_data import generate, generate_pg
from bench._scale_rows import ACTORS, PROJECTS, WORDS
from bench.audit_overhead import _concurrent, _texts
from bench.integrity import _changes
from memwarden import Memwarden
from memwarden.api import create_app

MEMORIES = 1_000_000
LEDGER_ROWS = 10_000_000
SAMPLES = 200
WRITERS = 8
UNITS = 400  # of 4 mutations each, shared by the writers
INCREMENTAL_GOAL = 10.0  # full / incremental, at least
ENGINES: tuple[Engine, ...] = ("postgresql", "sqlite")


def _p95(samples: list[float]) -> dict[str, float]:
    return latency_ms(samples)


def _sampled(count: int, call: Callable[[int], Any]) -> list[float]:
    for warm in range(5):
        call(warm)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - started)
    return samples


def _load(ctx: Context, engine: Engine, mw: Memwarden, memories: int, rows: int) -> int:
    with ctx.progress(f"{engine}: loading {memories:,} memories", memories) as advance:
        if engine == "postgresql":
            return generate_pg(mw, memories, advance, ledger_rows=rows)
        path = mw.store.engine.url.database
        assert path is not None
        return generate(path, mw.ledger.key, mw.anchor(), memories, advance, ledger_rows=rows)


def _get(client: TestClient, path: str) -> None:
    response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")


def _engine(ctx: Context, engine: Engine, fraction: float) -> list[Result]:
    memories = max(1_000, round(MEMORIES * fraction) // 10 * 10)
    target_rows = round(LEDGER_ROWS * fraction)
    rng = random.Random(ctx.seed)
    figures: dict[str, Any] = {}
    # Each phase's wall time, to tell how long the full size would take (the load's detail).
    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = round(now - clock[0], 2)
        clock[0] = now

    with ctx.memwarden(engine, f"scale-{engine}") as mw:
        lap("setup")
        started = time.perf_counter()
        rows = _load(ctx, engine, mw, memories, target_rows)
        load_s = time.perf_counter() - started
        lap("load")
        mw.reset_witness()
        ctx.note(f"{engine}: verify {rows:,} rows")
        verify_s = time.perf_counter()
        report = mw.verify()
        verify_s = time.perf_counter() - verify_s
        if not report.ok:
            raise RuntimeError(f"the loaded ledger does not verify: {report.reason}")
        lap("verify")
        ctx.note(f"{engine}: full integrity scan")
        full = mw.integrity_check(full=True)
        if not full.clean:
            raise RuntimeError(f"the loaded store is not clean: {full.to_dict()['findings']}")
        lap("integrity_full")

        queries = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(SAMPLES + 5)]
        ids = [rng.randint(1, memories) for _ in range(SAMPLES + 5)]
        ctx.note(f"{engine}: recall, history, recent by actor")
        figures["recall"] = _sampled(
            SAMPLES, lambda i: mw.recall(queries[i], PROJECTS[i % len(PROJECTS)])
        )
        lap("recall")
        figures["history"] = _sampled(SAMPLES, lambda i: mw.history(ids[i]))
        figures["actor"] = _sampled(
            SAMPLES, lambda i: mw.recent(actor=ACTORS[i % len(ACTORS)], limit=50)
        )
        lap("history_and_actor")
        deep = max(range(1, 61), key=lambda i: 0 if i % 10 > 5 else i)  # an active memory
        with TestClient(create_app(memwarden=mw), base_url="http://127.0.0.1") as client:
            ctx.note(f"{engine}: dashboard")
            figures["overview"] = _sampled(SAMPLES // 4, lambda _i: _get(client, "/dashboard/"))
            figures["page"] = _sampled(
                SAMPLES // 4, lambda _i: _get(client, f"/dashboard/memory/{deep}")
            )
        lap("dashboard")
        ctx.note(f"{engine}: {WRITERS} writers")
        texts = _texts(UNITS, ctx.seed)
        writers_s = _concurrent(mw, texts, WRITERS)
        lap("writers")
        _changes(mw, memories, ctx.seed)
        lap("changes")
        incremental = mw.integrity_check()
        if not incremental.clean:
            raise RuntimeError(f"the incremental scan is not clean: {incremental.to_dict()}")
        lap("integrity_incremental")
    lap("teardown")
    size = {"memories": memories, "ledger_rows": rows, "fraction": fraction}
    full_s, incremental_s = full.run.seconds or 0.0, incremental.run.seconds or 0.0

    def latency(name: str, key: str, label: str) -> Result:
        stats = _p95(figures[key])
        return Result(
            f"scale_{name}_p95_{engine}",
            stats["p95_ms"],
            "ms",
            engine,
            rows,
            better="lower",
            detail={**stats, **size, "samples": len(figures[key]), "what": label},
        )

    return [
        Result(
            f"scale_load_{engine}",
            rows / load_s,
            "rows/s",
            engine,
            rows,
            detail={
                **size,
                "seconds": load_s,
                "how": "COPY" if engine != "sqlite" else "insert",
                "phases_s": phases,
            },
        ),
        Result(
            f"scale_verify_{engine}",
            report.rows_checked / verify_s,
            "rows/s",
            engine,
            rows,
            detail={**size, "seconds": verify_s, "rows_checked": report.rows_checked},
        ),
        latency("recall", "recall", "recall of two words in one project, 5 hits"),
        latency("history", "history", "one memory's ledger (Memwarden.history)"),
        latency("actor_recent", "actor", "the 50 newest ledger rows of one of 10 actors"),
        latency("dashboard", "overview", "GET /dashboard/ in process"),
        latency("dashboard_memory", "page", "GET /dashboard/memory/{id} in process"),
        Result(
            f"scale_mutations_{WRITERS}w_{engine}",
            UNITS * 4 / writers_s,
            "mutations/s",
            engine,
            rows,
            detail={**size, "writers": WRITERS, "mutations": UNITS * 4, "seconds": writers_s},
        ),
        Result(
            f"scale_integrity_full_{engine}",
            full_s,
            "s",
            engine,
            rows,
            better="lower",
            detail={**size, **{f"{c.name}_s": c.seconds for c in full.checks}},
        ),
        Result(
            f"scale_integrity_incremental_{engine}",
            incremental_s,
            "s",
            engine,
            rows,
            baseline=full_s,
            baseline_label="the full scan of the same store, same run",
            # The goal is PostgreSQL's; SQLite's incremental scan still checks every row MAC.
            floor=INCREMENTAL_GOAL if engine == "postgresql" else None,
            better="lower",
            detail={
                **size,
                "changes_since_full": UNITS * 4 + 1_000,
                **{f"{c.name}_s": c.seconds for c in incremental.checks},
            },
        ),
    ]


def _engines() -> tuple[Engine, ...]:
    """``MEMWARDEN_BENCH_SCALE_ENGINES`` (``postgresql``, ``sqlite`` or both, comma-separated):
    the full size takes about 40 minutes an engine here, so one may be run at a time."""
    given = os.environ.get("MEMWARDEN_BENCH_SCALE_ENGINES", "")
    chosen = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ENGINES]
    if unknown:
        raise ValueError(f"MEMWARDEN_BENCH_SCALE_ENGINES: unknown engine {unknown[0]!r}")
    return tuple(e for e in ENGINES if e in chosen) if chosen else ENGINES


@benchmark(
    "scale",
    "1M memories, 10M ledger rows (PostgreSQL, SQLite): load, verify, integrity full and "
    "incremental, recall/history/dashboard p95, 8 writers (--scale only)",
    order=200,
    scale=True,
)
def run(ctx: Context) -> list[Result]:
    fraction = ctx.scale if ctx.scale is not None else 0.01
    results: list[Result] = []
    for engine in _engines():
        if engine == "postgresql" and ctx.pg_url is None:
            results.append(ctx.skipped_pg("scale_postgresql", "rows/s"))
            continue
        try:
            results.extend(_engine(ctx, engine, fraction))
        except Exception as exc:  # noqa: BLE001 - one engine failing must not hide the other's
            ctx.console.print_exception()
            results.append(
                Result(f"scale_{engine}", None, "", engine, 0, error=f"{type(exc).__name__}: {exc}")
            )
    return results
