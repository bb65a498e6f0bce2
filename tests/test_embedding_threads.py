"""memwarden leaves its host's environment and thread pools alone: the local embedder runs on
one BLAS thread only during its own forward pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import ThreadpoolController, threadpool_info

from memwarden.core.embedding import _load_local
from memwarden.core.embedding.minilm import MiniLM

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def test_importing_memwarden_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    script = (
        "import json, os, memwarden\n"
        "from memwarden.core import recall, service\n"
        "from memwarden.core.embedding import minilm\n"
        f"print(json.dumps({{v: os.environ.get(v) for v in {VARIABLES!r}}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict.fromkeys(VARIABLES)


def _blas_threads() -> int:
    return max(int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas")


def test_the_forward_pass_alone_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _load_local()
    assert isinstance(model, MiniLM)
    seen: list[int] = []
    forward = model._forward

    def watched(batch: list[list[int]]) -> Any:
        seen.append(_blas_threads())
        return forward(batch)

    monkeypatch.setattr(model, "_forward", watched)
    # The host runs BLAS on two threads; the embedder must not change that for it.
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        assert _blas_threads() == 2
        vectors = model.embed(["what does the user eat", "the launch moved to April"])
        assert _blas_threads() == 2
    assert vectors.shape == (2, 384)
    assert seen and set(seen) == {1}


def _cpu_ticks_per_thread() -> dict[int, int]:
    """User + system clock ticks of each of this process's threads (Linux's /proc)."""
    ticks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_query_embedded_on_a_worker_thread_runs_on_one_blas_thread() -> None:
    """Recall embeds its query on a worker thread and API requests run on worker threads: the
    limit must hold there too. Under a process-wide limit set from a worker, numpy's OpenBLAS
    still ran the forward pass on its second thread (core/blas.py): that thread then does a
    large share of the work; under the limit it does none."""
    model = _load_local()
    assert isinstance(model, MiniLM)
    queries = [f"what does person {i} eat on day {i % 7} of the week" for i in range(80)]
    seen: dict[str, Any] = {}

    def embed_all() -> None:
        # Sampled from the worker itself: a thread that has ended leaves /proc/self/task.
        seen["id"] = threading.get_native_id()
        seen["before"] = _cpu_ticks_per_thread()
        for query in queries:
            model.embed([query])
        seen["after"] = _cpu_ticks_per_thread()

    with ThreadpoolController().limit(limits=2, user_api="blas"):
        model.embed(["warm the pool up"])
        thread = threading.Thread(target=embed_all)
        thread.start()
        thread.join()
        assert _blas_threads() == 2  # the host's setting is back
    before, after, worker = seen["before"], seen["after"], seen["id"]
    own = after[worker] - before[worker]
    others = sum(after[t] - before.get(t, 0) for t in after if t != worker)
    assert own >= 20, f"the embeddings took {own} ticks: too few to judge"
    assert others <= own // 5, f"other threads took {others} ticks beside the worker's {own}"
