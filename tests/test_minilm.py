"""The local model computes what sentence-transformers computes, on both of its runtimes.

``tests/data/minilm_reference.json`` holds sentence-transformers' own vectors for a few texts
(its generator field says which versions: computed once, offline, from the same pinned
package). The ONNX Runtime encoder (core/embedding/minilm_onnx.py) and the numpy one must both
give them back, and agree with each other on batches with padding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from memwarden import Memwarden, Settings
from memwarden.core import embedding
from memwarden.core.doctor import DoctorContext
from memwarden.core.doctor.recall import check_embedder
from memwarden.core.embedding import minilm, minilm_onnx
from memwarden.core.embedding.minilm import MiniLM, ModelUnavailableError

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def onnx_model() -> MiniLM:
    return MiniLM(runtime="onnxruntime")


@pytest.fixture(scope="module")
def numpy_model() -> MiniLM:
    return MiniLM(runtime="numpy")


@pytest.mark.parametrize("runtime", ["onnxruntime", "numpy"])
def test_each_runtime_gives_sentence_transformers_vectors(
    runtime: str, onnx_model: MiniLM, numpy_model: MiniLM
) -> None:
    model = onnx_model if runtime == "onnxruntime" else numpy_model
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    # One at a time (no padding) and all together (padded to the longest, truncated at 256).
    alone = np.stack([model.embed([text])[0] for text in REFERENCE["texts"]])
    together = model.embed(REFERENCE["texts"])
    for got in (alone, together):
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 2e-5
        assert (got * expected).sum(axis=1).min() > 0.99999


def test_the_two_runtimes_agree_on_padded_batches(onnx_model: MiniLM, numpy_model: MiniLM) -> None:
    rng = np.random.default_rng(7)
    words = "launch crew orbit budget tea coffee review risk schedule payload the of and".split()
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 80, size=70)]
    a, b = onnx_model.embed(texts), numpy_model.embed(texts)
    assert np.abs(a - b).max() < 1e-5
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_the_serialised_graph_is_valid_onnx() -> None:
    onnx = pytest.importorskip("onnx")  # a dev dependency: the runtime does not need it
    weights = minilm.load_weights(minilm.model_dir())
    model = onnx.load_from_string(minilm_onnx._graph(weights))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == minilm_onnx.IR_VERSION
    assert [o.version for o in model.opset_import] == [minilm_onnx.OPSET]
    kinds = {n.op_type for n in model.graph.node}
    assert {"MatMul", "LayerNormalization", "Softmax", "Erf"} <= kinds
    assert [i.name for i in model.graph.input] == ["x", "bias"]


def test_without_onnxruntime_numpy_runs_the_model_and_says_why(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if onnxruntime were not installed: its import fails.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelUnavailableError, match="onnxruntime cannot be imported"):
        MiniLM(runtime="onnxruntime")
    monkeypatch.setattr(embedding, "_local", None)
    with Memwarden.init(settings.model_copy(update={"embedder": "local"})) as mw:
        mw.add_project("p")
        memory = mw.remember("p", "The user is pescatarian", status="active").memory.id
        assert mw.wait_for_embeddings(60)
        found = mw.recall_detailed("what does the user eat", "p", mode="semantic")
        assert found.mode_used == "semantic" and [h.id for h in found.hits] == [memory]
        health = mw.recall_health()
        assert health["runtime"] == "numpy"
        assert "onnxruntime cannot be imported" in health["runtime_fallback"]
        checks = {c.name: c for c in check_embedder(DoctorContext(mw.settings, mw, None))}
        assert checks["recall_embedder"].status == "ok"
        assert "(numpy)" in checks["recall_embedder"].detail
        warned = checks["recall_embedder_runtime"]
        assert warned.status == "warn" and "onnxruntime cannot be imported" in warned.detail
    monkeypatch.setattr(embedding, "_local", None)


def test_a_runtime_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="runtime must be"):
        MiniLM(runtime="torch")


def test_the_default_runtime_is_onnxruntime_and_health_says_so(settings: Settings) -> None:
    with Memwarden.init(settings.model_copy(update={"embedder": "local"})) as mw:
        mw.add_project("p")
        mw.recall("load the model", "p")
        health = mw.recall_health()
        assert str(health["runtime"]).startswith("onnxruntime ")
        assert health["runtime_fallback"] is None
        assert isinstance(embedding._load_local(), minilm.MiniLM)
