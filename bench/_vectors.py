"""Stored vectors shaped like the local model's, for benchmarks that cannot embed their stores.

Embedding 100k texts takes most of an hour here, so benchmarks write vectors straight to the
table. Isotropic random vectors would not do: the vector search prunes on the vectors' shape
(core/vector_prune.py), and random ones are its worst case, which it detects and scores in
full. These are unit vectors drawn from a Gaussian with the mean and covariance of the local
model's embeddings of a sample of the corpus's own texts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from memwarden.core.embedding import minilm

SHRINK = 0.01


class Shaped:
    """Draws unit vectors with the shape of the model's embeddings of ``sample``."""

    def __init__(self, sample: list[str], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        shape = minilm.MiniLM().embed(sample).astype(np.float64)
        self.mean: npt.NDArray[np.float64] = shape.mean(axis=0)
        values, axes = np.linalg.eigh(np.cov(shape.T))
        # A sample smaller than the dimension gives a covariance of lower rank: every drawn
        # vector would lie in the sample's span, which flatters the pruning. A little variance
        # in every direction (1% of the mean) keeps the draws full rank.
        values = np.maximum(values, 0.0) + SHRINK * float(np.maximum(values, 0.0).mean())
        self.spread: npt.NDArray[np.float64] = axes * np.sqrt(values)

    def draw(self, count: int) -> npt.NDArray[np.float32]:
        drawn = self.mean + self.rng.standard_normal((count, minilm.DIMENSION)) @ self.spread.T
        unit: npt.NDArray[np.float32] = (
            drawn / np.linalg.norm(drawn, axis=1, keepdims=True)
        ).astype(np.float32)
        return unit
