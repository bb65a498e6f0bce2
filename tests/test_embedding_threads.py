"""memwarden leaves its host's environment and thread pools alone: the local embedder runs on
one BLAS thread only during its own forward pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
