"""Embedders: text → unit vectors, behind one small interface.

``local`` (the default) runs all-MiniLM-L6-v2 offline from its pinned package
(``minilm.py``); ``openai`` calls an OpenAI-compatible ``/embeddings`` endpoint (Ollama, vLLM,
OpenAI; ``remote.py``); ``none`` turns meaning off. ``Embedders`` holds the one embedder of a
process, loads it on first use, and when it cannot (package missing, file damaged, endpoint
down) says why — recall then falls back to full text, raises a fault (``/health``, ``doctor``)
and never fails the request.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np
import numpy.typing as npt
import structlog

from memwarden.config import Settings
from memwarden.observability.faults import clear_fault, raise_fault

log = structlog.get_logger(__name__)

Vectors = npt.NDArray[np.float32]
FAULT_KEY = "recall.embedder"


class Embedder(Protocol):
    """Anything that turns texts into unit-length float32 vectors of one dimension."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> Vectors: ...


class EmbedderUnavailable(Exception):
    """No embedder is configured, or the configured one cannot run; ``str()`` says why."""


_local_lock = threading.Lock()
_local: Embedder | None = None


def _load_local() -> Embedder:
    """The local model, loaded once per process (≈0.3 s; many stores may share it)."""
    global _local
    with _local_lock:
        if _local is None:
            from memwarden.core.embedding.minilm import MiniLM

            _local = MiniLM()
        return _local


def _build(settings: Settings) -> Embedder:
    if settings.embedder == "local":
        return _load_local()
    from memwarden.core.embedding.remote import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)


class Embedders:
    """A store's embedder: built on first use; every failure recorded, surfaced, retried later."""

    RETRY_SECONDS = 30.0  # after a failure, how long recall goes straight to full text

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._error: str | None = None
        self._failed_at = 0.0

    @property
    def configured(self) -> bool:
        return self.settings.embedder != "none"

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def model_id(self) -> str | None:
        """The configured model's id, known without loading it (None with no embedder)."""
        if self.settings.embedder == "none":
            return None
        if self.settings.embedder == "local":
            from memwarden.core.embedding.minilm import MODEL_ID

            return MODEL_ID
        return f"openai:{self.settings.embedder_model}"

    @property
    def loaded(self) -> Embedder | None:
        """The embedder if it has loaded (and not failed since), without loading it."""
        return self._embedder if self._error is None else None

    @property
    def runtime(self) -> tuple[str | None, str | None]:
        """What runs the loaded local model (``onnxruntime 1.30.0`` or ``numpy``) and, when
        numpy runs it for want of onnxruntime, why; (None, None) before it loads or for an
        endpoint."""
        embedder = self._embedder
        return getattr(embedder, "runtime", None), getattr(embedder, "fallback", None)

    def get(self) -> Embedder:
        """The embedder, loading it if need be; ``EmbedderUnavailable`` says why it cannot."""
        if not self.configured:
            raise EmbedderUnavailable("no embedder is configured (MEMWARDEN_EMBEDDER=none)")
        import time

        with self._lock:
            if self._embedder is not None:
                return self._embedder
            if self._error is not None and time.monotonic() - self._failed_at < self.RETRY_SECONDS:
                raise EmbedderUnavailable(self._error)
            try:
                self._embedder = _build(self.settings)
            except Exception as exc:  # fail-open: recall falls back to full text
                self._fail(f"the {self.settings.embedder} embedder did not load: {exc}")
                raise EmbedderUnavailable(self._error or "") from exc
            self._recovered()
            return self._embedder

    def embed(self, texts: list[str]) -> Vectors:
        """Embed, recording a failure (and its fault) instead of hiding it. After a failure
        the embedder is not asked again for ``RETRY_SECONDS``: a dead endpoint must not cost
        every recall its timeout."""
        import time

        embedder = self.get()
        if self._error is not None and time.monotonic() - self._failed_at < self.RETRY_SECONDS:
            raise EmbedderUnavailable(self._error)
        try:
            vectors = embedder.embed(texts)
        except Exception as exc:  # fail-open: the caller falls back to full text
            self._fail(f"the {self.settings.embedder} embedder failed: {exc}", loaded=True)
            raise EmbedderUnavailable(self._error or "") from exc
        self._recovered()
        return vectors

    def _fail(self, message: str, *, loaded: bool = False) -> None:
        import time

        self._error = message.splitlines()[0][:500]
        self._failed_at = time.monotonic()
        log.warning("embedder_unavailable", error=self._error)
        raise_fault(
            FAULT_KEY,
            "recall: embedder unavailable",
            f"{self._error}; recall falls back to full text",
            {"embedder": self.settings.embedder, "loaded": loaded},
            severity="warning",
        )

    def _recovered(self) -> None:
        if self._error is not None:
            self._error = None
            clear_fault(FAULT_KEY)


def as_blob(vector: Vectors) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dimension: int) -> Vectors:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape[0] != dimension:
        raise ValueError(f"a stored vector has {vector.shape[0]} values, not {dimension}")
    return vector.astype(np.float32)
