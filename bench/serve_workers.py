"""``memwarden serve --workers N`` on PostgreSQL: requests/s for 1, 2 and 4 workers over real
HTTP on loopback, mixed reads and writes, then ``audit verify`` and a check for a chain fork.

Each worker count gets a fresh store (a few thousand memories to read), the server exactly as
an operator starts it, and the same load: CLIENT_THREADS client threads for a fixed time, each
request a recall (READ_SHARE), a ``GET /memory/{id}`` or a create. Afterwards the chain must
verify, its witness must be at the head, and no two rows may name the same predecessor (a
fork). The baseline of each figure is one worker in the same run: the ratio is the scaling.
The load generator runs on the same machine, so on few cores it competes with the workers.

SQLite is not measured: ``serve --workers`` refuses it (see docs/serving.md).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from bench._corpus import Vocabulary, statement
from bench._harness import Context, Result, benchmark, latency_ms
from bench.api import MEMWARDEN, _env, _free_port
from memwarden import Memwarden
from memwarden.db import schema

WORKER_COUNTS = (1, 2, 4)
CLIENT_THREADS = 16
READ_SHARE = 0.8  # of requests; half recalls, half gets by id
START_TIMEOUT = 120.0


@dataclass
class Load:
    requests: int
    writes: int
    seconds: float
    latencies: list[float]


def _start(n: int, env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """The server, once every worker has finished its start-up (its log says so)."""
    command = [MEMWARDEN, "serve", "--port", str(port), "--no-access-log", "--workers", str(n)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    started = threading.Semaphore(0)
    log: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:  # drained to the end: a full pipe would stall the server
            log.append(line)
            if "Application startup complete" in line:
                started.release()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    for _ in range(n):
        if not started.acquire(timeout=max(deadline - time.monotonic(), 0.1)):
            process.kill()
            raise RuntimeError(f"{n} workers did not start: {''.join(log[-20:])}")
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _load(url: str, seconds: float, ids: list[int], texts: list[str], seed: int) -> Load:
    counter = iter(range(len(texts)))
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(worker: int) -> tuple[int, int, list[float]]:
        rng = random.Random(seed + worker)
        done = writes = 0
        latencies: list[float] = []
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < stop_at:
                roll = rng.random()
                started = time.perf_counter()
                if roll < READ_SHARE / 2:
                    word = texts[rng.randrange(len(texts))].split()[-1]
                    response = http.post("/recall", json={"query": word, "project": "atlas"})
                elif roll < READ_SHARE:
                    response = http.get(f"/memory/{ids[rng.randrange(len(ids))]}")
                else:
                    with lock:
                        index = next(counter)
                    response = http.post(
                        "/memory", json={"project": "atlas", "content": texts[index]}
                    )
                    writes += 1
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                done += 1
        return done, writes, latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        parts = list(pool.map(client, range(CLIENT_THREADS)))
    elapsed = time.perf_counter() - started
    return Load(
        sum(p[0] for p in parts),
        sum(p[1] for p in parts),
        elapsed,
        [lat for p in parts for lat in p[2]],
    )


def _chain_check(mw: Memwarden) -> dict[str, object]:
    """``audit verify`` over the whole chain, and the fork check: one row per predecessor."""
    report = mw.verify()
    if not report.ok:
        raise RuntimeError(f"audit verify failed after the load: {report.reason}")
    witness = mw.ledger.witness
    if witness is not None and report.head != witness.read().head:
        raise RuntimeError(f"the witness {witness.read().head} is not at the head {report.head}")
    L = schema.ledger
    with mw.store.read() as conn:
        rows, distinct, top = conn.execute(
            sa.select(
                sa.func.count(), sa.func.count(sa.distinct(L.c.prev_tag)), sa.func.max(L.c.seq)
            )
        ).one()
        memories = conn.execute(sa.select(sa.func.count()).select_from(schema.memories)).scalar()
        created = conn.execute(
            sa.select(sa.func.count()).where(L.c.entity_type == "memory", L.c.action == "created")
        ).scalar()
    if rows != distinct or rows != top:
        raise RuntimeError(f"chain fork or gap: {rows} rows, {distinct} predecessors, head {top}")
    if memories != created:
        # The ledger fails open: an append that lost a race would leave its memory unrecorded.
        raise RuntimeError(f"{memories} memories but {created} ledger 'created' rows")
    return {"ledger_rows": int(rows), "verify_rows_per_s": round(report.rows_per_second)}


def _one(ctx: Context, n: int, seconds: float, preload: int) -> tuple[Load, dict[str, object]]:
    rng = random.Random(ctx.seed + n)
    vocab = Vocabulary(20_000, rng)
    with ctx.memwarden("postgresql", f"workers-{n}") as mw:
        texts = [f"w{n}-{i}: {statement(vocab, rng)}" for i in range(preload + 20_000)]
        ids = [mw.remember("atlas", text, "knowledge").memory.id for text in texts[:preload]]
        port = _free_port()
        process = _start(n, _env(mw.settings), port)
        try:
            url = f"http://127.0.0.1:{port}"
            _load(url, 3.0, ids, texts[preload : preload + 2_000], ctx.seed)  # warm
            load = _load(url, seconds, ids, texts[preload + 2_000 :], ctx.seed)
        finally:
            _stop(process)
        return load, _chain_check(mw)


@benchmark(
    "serve_workers",
    "serve --workers 1/2/4 on PostgreSQL: mixed req/s over HTTP, verify clean, no fork",
    order=65,
)
def run(ctx: Context) -> list[Result]:
    if ctx.pg_url is None:
        return [ctx.skipped_pg(f"serve_workers_rps_postgresql_{n}", "req/s") for n in WORKER_COUNTS]
    seconds = ctx.size(20, 6)
    preload = ctx.size(2_000, 300)
    measured: dict[int, tuple[Load, dict[str, object]]] = {}
    with ctx.progress("serve --workers", len(WORKER_COUNTS)) as advance:
        for n in WORKER_COUNTS:
            measured[n] = _one(ctx, n, seconds, preload)
            advance(1)
    one = measured[1][0]
    results = []
    for n, (load, chain) in measured.items():
        results.append(
            Result(
                f"serve_workers_rps_postgresql_{n}",
                load.requests / load.seconds,
                "req/s",
                "postgresql",
                load.requests,
                baseline=one.requests / one.seconds,
                baseline_label="the same load on one worker",
                detail={
                    "workers": n,
                    "client_threads": CLIENT_THREADS,
                    "writes": load.writes,
                    "seconds": load.seconds,
                    **latency_ms(load.latencies),
                    **chain,
                },
            )
        )
    return results
