"""The HTTP API through a real uvicorn process on loopback, loaded from this (second) process.

- recall p95 at 100k memories: sequential ``POST /recall`` requests with a read key, against
  the same questions answered by ``Memwarden.recall`` in-process (the baseline: what HTTP,
  auth and JSON add). Target: p95 at most 25 ms.
- mutation requests/s with and without the ledger: two servers on two fresh databases, the
  same ``POST /memory`` creates from 8 client threads, rounds alternating between them so both
  see the same machine. The ratio is what the ledger costs per request over HTTP.
- idle server RSS of ``memwarden serve`` after start-up and a few requests, against a bare
  FastAPI app with one route under the same uvicorn (the baseline).

The servers for the ledger pair are started by this module (``python -m bench.api serve``):
``create_app`` and uvicorn exactly as ``memwarden serve`` runs them, plus a switch that turns
the ledger off, which the product does not offer.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench._corpus import Vocabulary, build, bulk_load, statement
from bench._harness import Context, Engine, Result, benchmark, latency_ms
from memwarden import Memwarden, Settings

RECALL_TARGET_MS = 25.0
CLIENT_THREADS = 8
ROUNDS = 4
WARMUP = 30
MEMWARDEN = str(Path(sys.executable).with_name("memwarden"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["MEMWARDEN_HOME"] = str(settings.home)
    if settings.database_url:
        env["MEMWARDEN_DATABASE_URL"] = settings.database_url
    return env


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def server(
    command: Sequence[str], env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memwarden_serve(port: int) -> list[str]:
    return [MEMWARDEN, "serve", "--port", str(port), "--no-access-log"]


def bench_serve(port: int, *, ledger: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.api",
        "serve",
        "--port",
        str(port),
        *([] if ledger else ["--no-ledger"]),
    ]


# -- recall p95 -------------------------------------------------------------------------------


def _recall(ctx: Context) -> list[Result]:
    rows = ctx.size(100_000, 10_000)
    corpus = build(
        rows, questions=ctx.size(400, 150), planted_count=0, seed=ctx.seed, chunks=rows // 10
    )
    questions = list(corpus.questions)
    random.Random(ctx.seed).shuffle(questions)
    with ctx.memwarden("sqlite", "api-recall") as mw:
        with ctx.progress(f"loading {rows:,} memories", 1) as advance:
            bulk_load(mw, corpus)
            advance(1)
        _, token = mw.create_key("bench-reader", "read")
        for question in questions[:WARMUP]:
            mw.recall(question, "atlas")
        local: list[float] = []
        for question in questions:
            started = time.perf_counter()
            mw.recall(question, "atlas")
            local.append(time.perf_counter() - started)
        settings = mw.settings
        port = _free_port()
        with server(memwarden_serve(port), _env(settings), port) as process:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
            ) as client:
                for question in questions[:WARMUP]:
                    client.post(
                        "/recall", json={"query": question, "project": "atlas"}
                    ).raise_for_status()
                idle = rss_mb(process.pid)
                remote: list[float] = []
                with ctx.progress("recall over HTTP", len(questions)) as advance:
                    for question in questions:
                        started = time.perf_counter()
                        response = client.post(
                            "/recall", json={"query": question, "project": "atlas"}
                        )
                        remote.append(time.perf_counter() - started)
                        response.raise_for_status()
                        advance(1)
                loaded = rss_mb(process.pid)
    ours, base = latency_ms(remote), latency_ms(local)
    return [
        Result(
            "api_recall_p95_sqlite",
            ours["p95_ms"],
            "ms",
            "sqlite",
            rows,
            baseline=base["p95_ms"],
            baseline_label="the same recall called in-process (no HTTP, no auth, no JSON)",
            floor=RECALL_TARGET_MS,
            floor_on="value",
            better="lower",
            detail={
                **ours,
                "baseline_p50_ms": base["p50_ms"],
                "queries": len(questions),
                "rss_after_warmup_mb": idle,
                "rss_after_load_mb": loaded,
            },
        )
    ]


# -- mutation throughput with and without the ledger -----------------------------------------------


def _texts(count: int, seed: int, prefix: str) -> list[str]:
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    return [f"{prefix}{index}: {statement(vocab, rng)}" for index in range(count)]


def _creates(url: str, texts: list[str]) -> float:
    """POST every text from CLIENT_THREADS threads; seconds taken. Any non-201 is an error."""
    shards = [texts[i::CLIENT_THREADS] for i in range(CLIENT_THREADS)]

    def send(shard: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for text in shard:
                response = client.post("/memory", json={"project": "atlas", "content": text})
                if response.status_code != 201:
                    raise RuntimeError(
                        f"POST /memory: {response.status_code} {response.text[:200]}"
                    )

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(send, shards))
    return time.perf_counter() - started


def _mutations(ctx: Context, engine: Engine) -> Result:
    count = ctx.size(4_000, 800)
    per_round = count // ROUNDS
    texts = {
        True: _texts(count + WARMUP, ctx.seed, "l"),
        False: _texts(count + WARMUP, ctx.seed, "n"),
    }
    seconds = {True: 0.0, False: 0.0}
    with ctx.memwarden(engine, "api-ledger") as on, ctx.memwarden(engine, "api-noledger") as off:
        ports = {True: _free_port(), False: _free_port()}
        with (
            server(bench_serve(ports[True], ledger=True), _env(on.settings), ports[True]),
            server(bench_serve(ports[False], ledger=False), _env(off.settings), ports[False]),
        ):
            urls = {flag: f"http://127.0.0.1:{port}" for flag, port in ports.items()}
            for flag in (True, False):
                _creates(urls[flag], texts[flag][:WARMUP])
            with ctx.progress(f"API mutations on {engine}", count * 2) as advance:
                for index in range(ROUNDS):
                    for flag in (True, False) if index % 2 == 0 else (False, True):
                        batch = texts[flag][
                            WARMUP + index * per_round : WARMUP + (index + 1) * per_round
                        ]
                        seconds[flag] += _creates(urls[flag], batch)
                        advance(per_round)
        ledger_rows = on.anchor().seq
        unledgered = off.anchor().seq
    done = per_round * ROUNDS
    if unledgered > 1:  # the project row of the fixture, written before the switch
        raise RuntimeError(f"the ledger-off server wrote {unledgered} ledger rows")
    return Result(
        f"api_mutations_rps_{engine}",
        done / seconds[True],
        "req/s",
        engine,
        done,
        baseline=done / seconds[False],
        baseline_label="the same server and requests with the ledger switched off",
        detail={"client_threads": CLIENT_THREADS, "rounds": ROUNDS, "ledger_rows": ledger_rows},
    )


# -- idle RSS ---------------------------------------------------------------------------------------

BARE_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def _idle_rss(ctx: Context) -> Result:
    with ctx.memwarden("sqlite", "api-rss") as mw:
        settings = mw.settings
        port = _free_port()
        with server(memwarden_serve(port), _env(settings), port) as process:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                client.post(
                    "/memory", json={"project": "atlas", "content": "warm"}
                ).raise_for_status()
                client.post("/recall", json={"query": "warm"}).raise_for_status()
                client.get("/metrics").raise_for_status()
            time.sleep(1.0)
            ours = rss_mb(process.pid)
    port = _free_port()
    with server([sys.executable, "-c", BARE_APP, str(port)], dict(os.environ), port) as bare:
        time.sleep(1.0)
        base = rss_mb(bare.pid)
    return Result(
        "api_idle_rss_sqlite",
        ours,
        "MB",
        "sqlite",
        1,
        baseline=base,
        baseline_label="a bare FastAPI app with one route under the same uvicorn",
        better="lower",
    )


@benchmark(
    "api",
    "HTTP API via uvicorn: recall p95 at 100k, mutation req/s with vs without ledger, idle RSS",
    order=60,
)
def run(ctx: Context) -> list[Result]:
    results = _recall(ctx)
    results.append(_mutations(ctx, "sqlite"))
    if ctx.pg_url is not None:
        results.append(_mutations(ctx, "postgresql"))
    else:
        results.append(ctx.skipped_pg("api_mutations_rps_postgresql", "req/s"))
    results.append(_idle_rss(ctx))
    return results


# -- the server this module starts for the ledger pair --------------------------------------------


def serve(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-ledger", action="store_true")
    args = parser.parse_args(argv)
    import structlog
    import uvicorn

    from memwarden.api import create_app

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    mw = Memwarden(Settings())
    if args.no_ledger:
        mw.ledger.enabled = False
    try:
        app = create_app(memwarden=mw)
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        mw.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m bench.api serve --port N [--no-ledger]")
