"""An OpenAI-compatible ``POST {base}/embeddings`` endpoint (Ollama, vLLM, OpenAI, …)."""

from __future__ import annotations

import os

import httpx
import numpy as np

from memwarden.config import Settings
from memwarden.core.embedding import Vectors

BATCH = 64


class OpenAIEmbedder:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"openai:{model}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s)
        self._dimension: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        if not settings.embedder_url or not settings.embedder_model:
            raise ValueError(
                "MEMWARDEN_EMBEDDER=openai needs MEMWARDEN_EMBEDDER_URL and MEMWARDEN_EMBEDDER_MODEL"
            )
        key = settings.embedder_api_key.get_secret_value() if settings.embedder_api_key else None
        embedder = cls(
            settings.embedder_url,
            settings.embedder_model,
            key or os.environ.get("OPENAI_API_KEY"),
            settings.embedder_timeout_s,
        )
        embedder.embed(["dimension probe"])  # fail at load, not at the first recall
        return embedder

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: list[str]) -> Vectors:
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            part = texts[start : start + BATCH]
            response = self._client.post(
                f"{self.base_url}/embeddings",
                json={"model": self.model, "input": part},
                headers=self._headers,
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"{self.base_url}/embeddings answered HTTP {response.status_code}: "
                    f"{response.text[:200]}"
                )
            data = sorted(response.json()["data"], key=lambda item: int(item["index"]))
            if len(data) != len(part):
                raise RuntimeError(f"asked for {len(part)} vectors, got {len(data)}")
            rows.extend(item["embedding"] for item in data)
        if not rows:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2:
            raise RuntimeError("the endpoint's vectors are not all of one length")
        if self._dimension is not None and matrix.shape[1] != self._dimension:
            raise RuntimeError(f"vectors of {matrix.shape[1]} values, earlier {self._dimension}")
        self._dimension = int(matrix.shape[1])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit: Vectors = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit
