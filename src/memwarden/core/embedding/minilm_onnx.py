"""all-MiniLM-L6-v2's encoder layers run by ONNX Runtime, built in memory from the pinned weights.

Why: numpy hands each matrix product to BLAS, which repacks the weight matrix on every call;
for a short query (~10 tokens) that repacking, not the arithmetic, is most of the forward pass.
ONNX Runtime packs constant weights once when the session is created and fuses the residual
additions with their layer norms and the biases with GELU. Measured on this project's 2-core
machine, one BLAS/ONNX thread: a single query 11.5 ms of CPU in numpy against 6.4 ms here; a
batch of 32, 15 ms against 5.8 ms per text (docs/recall.md).

No model file is downloaded or shipped: the graph below is the same BERT encoder as
``minilm.MiniLM._layers`` (the numpy reference the tests compare it with), written out
as ONNX operators (serialised by onnx_proto.py), and its weights are the arrays read (and
hash-checked) from the pinned package. The token embeddings, their layer norm and the mean pooling stay in numpy: they are a
row lookup and a few vector operations.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from memwarden.core.embedding import onnx_proto

LAYERS = 6
HEADS = 12
DIMENSION = 384
EPS = 1e-12
OPSET = 17  # LayerNormalization is a standard operator from opset 17
IR_VERSION = 8  # what onnxruntime 1.16 and later read (onnx writes newer by default)

Floats = npt.NDArray[np.float32]


class OnnxUnavailable(Exception):
    """onnxruntime cannot be imported or refuses the graph."""


def _graph(weights: Mapping[str, Floats]) -> bytes:
    """The encoder's six layers as a serialised ONNX model: inputs ``x`` (batch, tokens, 384:
    the embeddings after their layer norm) and ``bias`` (batch, 1, 1, tokens: 0 for a real
    token, -1e9 for padding); output the last hidden state."""
    head = DIMENSION // HEADS
    nodes: list[bytes] = []
    constants: list[bytes] = []

    def constant(name: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        constants.append(onnx_proto.tensor(name, np.asarray(value, dtype=dtype)))
        return name

    def op(kind: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(onnx_proto.node(kind, inputs, [output], **attributes))
        return output

    def linear(x: str, name: str, weight: Floats, bias: Floats) -> str:
        # torch keeps a dense weight as (out, in): transposed once here, for x @ w.
        w = constant(f"{name}.w", np.asarray(weight).T)
        return op("Add", [op("MatMul", [x, w], f"{name}.mm"), constant(f"{name}.b", bias)], name)

    def norm(x: str, residual: str, name: str, prefix: str) -> str:
        summed = op("Add", [x, residual], f"{name}.sum")
        gamma = constant(f"{name}.g", weights[f"{prefix}.weight"])
        beta = constant(f"{name}.b", weights[f"{prefix}.bias"])
        return op("LayerNormalization", [summed, gamma, beta], name, axis=-1, epsilon=EPS)

    constant("heads_shape", [0, 0, HEADS, head], np.int64)  # 0: keep that dimension
    constant("model_shape", [0, 0, DIMENSION], np.int64)
    constant("thirds", [DIMENSION] * 3, np.int64)
    constant("scale", 1.0 / np.sqrt(head))
    constant("one", 1.0)
    constant("half", 0.5)
    constant("root_two", np.sqrt(2.0))

    x = "x"
    for i in range(LAYERS):
        p, a = f"layer.{i}.", f"layer.{i}.attention.self."
        qkv_weight = np.concatenate([weights[f"{a}{n}.weight"] for n in ("query", "key", "value")])
        qkv_bias = np.concatenate([weights[f"{a}{n}.bias"] for n in ("query", "key", "value")])
        qkv = linear(x, f"l{i}.qkv", qkv_weight, qkv_bias)
        nodes.append(
            onnx_proto.node("Split", [qkv, "thirds"], [f"l{i}.{n}" for n in "qkv"], axis=-1)
        )
        heads = {n: op("Reshape", [f"l{i}.{n}", "heads_shape"], f"l{i}.{n}.heads") for n in "qkv"}
        q = op("Transpose", [heads["q"]], f"l{i}.q.t", perm=[0, 2, 1, 3])
        k = op("Transpose", [heads["k"]], f"l{i}.k.t", perm=[0, 2, 3, 1])
        v = op("Transpose", [heads["v"]], f"l{i}.v.t", perm=[0, 2, 1, 3])
        scores = op("Mul", [op("MatMul", [q, k], f"l{i}.qk"), "scale"], f"l{i}.scaled")
        shares = op("Softmax", [op("Add", [scores, "bias"], f"l{i}.masked")], f"l{i}.p", axis=-1)
        context = op("MatMul", [shares, v], f"l{i}.context")
        context = op("Transpose", [context], f"l{i}.context.t", perm=[0, 2, 1, 3])
        context = op("Reshape", [context, "model_shape"], f"l{i}.context.r")
        attended = linear(
            context,
            f"l{i}.attended",
            weights[f"{p}attention.output.dense.weight"],
            weights[f"{p}attention.output.dense.bias"],
        )
        x = norm(attended, x, f"l{i}.norm1", f"{p}attention.output.LayerNorm")
        hidden = linear(
            x,
            f"l{i}.hidden",
            weights[f"{p}intermediate.dense.weight"],
            weights[f"{p}intermediate.dense.bias"],
        )
        # BERT's exact GELU: 0.5 · h · (1 + erf(h / √2)).
        erf = op("Erf", [op("Div", [hidden, "root_two"], f"l{i}.h.scaled")], f"l{i}.erf")
        gated = op("Mul", [hidden, op("Add", [erf, "one"], f"l{i}.erf1")], f"l{i}.gated")
        gelu = op("Mul", [gated, "half"], f"l{i}.gelu")
        out = linear(
            gelu, f"l{i}.out", weights[f"{p}output.dense.weight"], weights[f"{p}output.dense.bias"]
        )
        x = norm(out, x, f"l{i}.norm2", f"{p}output.LayerNorm")
    return onnx_proto.model(
        "all-MiniLM-L6-v2 encoder",
        nodes,
        constants,
        [
            onnx_proto.value_info("x", onnx_proto.FLOAT, ["batch", "tokens", DIMENSION]),
            onnx_proto.value_info("bias", onnx_proto.FLOAT, ["batch", 1, 1, "tokens"]),
        ],
        [onnx_proto.value_info(x, onnx_proto.FLOAT, ["batch", "tokens", DIMENSION])],
        ir_version=IR_VERSION,
        opset=OPSET,
    )


def give_back_freed_memory() -> None:
    """Return the heap freed after the load (the serialised graph and the weights' transient
    copies: ~90 MB) to the system. glibc keeps large freed blocks for reuse, so a server
    showed them in its resident size for its whole life; elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): its allocator gives memory back itself
        return


class OnnxEncoder:
    """The six encoder layers in one ONNX Runtime session, run on the caller's thread only.

    ``InferenceSession.run`` may be called from several threads at once (it is thread-safe);
    with one intra-op thread each call runs on its caller's thread and starts no pool, so the
    host's threads are left alone as with the numpy path (tests/test_embedding_threads.py)."""

    def __init__(self, weights: Mapping[str, Floats]) -> None:
        try:
            import onnxruntime as ort
        except Exception as exc:  # ImportError, or a shared library that will not load
            raise OnnxUnavailable(f"onnxruntime cannot be imported: {exc}") from exc
        model = _graph(weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings would reach the host's stderr
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # an onnxruntime too old for the graph, say
            raise OnnxUnavailable(f"onnxruntime refused the encoder: {exc}") from exc
        self._output = self._session.get_outputs()[0].name
        self.version = str(ort.__version__)

    def __call__(self, x: Floats, bias: Floats) -> Floats:
        out = self._session.run([self._output], {"x": x, "bias": bias})[0]
        return np.asarray(out, dtype=np.float32)
