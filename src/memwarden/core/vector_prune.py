"""The exact nearest vectors of a large matrix, reading about a third of its bytes.

A search over the full matrix reads every float of it (153 MB at 100k vectors of 384 floats):
memory bandwidth, not arithmetic, sets its time. Sentence embeddings are far from isotropic —
all-MiniLM-L6-v2's vectors keep ~90 % of their squared length in their first 160 principal
directions — so each row ``x`` is also kept as ``head`` (its coordinates on those directions)
and ``rest`` (an upper bound on the length of what is left). For a query ``q`` split the same
way, ``q·x = q₁·head + q₂·x₂ ≤ q₁·head + |q₂|·rest`` (Cauchy–Schwarz). So:

1. ``q₁·head`` over every row (160 floats a row), the masks applied;
2. exact cosines of the best ``max(10n, 1000)`` of those: the ``n``-th best exact one is ``τ``;
3. exact cosines of every other row whose bound reaches ``τ`` — no row left out can beat the
   ``n``-th best found, so the result is the exact top ``n``, not an approximation.

When too many rows pass the bound (vectors close to isotropic: nothing to gain) the caller
scores the full matrix instead; a matrix whose sample keeps less than ``MIN_HEAD_SHARE`` of its
length in ``DIMS`` directions is not reduced at all. The directions are fitted on a sample when
the matrix reaches ``MIN_ROWS`` and again each time it has doubled; rows appended in between
are projected on the directions in use (the bound holds for any orthonormal directions: a
stale fit costs speed, never a result).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MIN_ROWS = 20_000  # below this the full product is a few milliseconds: kept exact and simple
DIMS = 160
MIN_HEAD_SHARE = 0.7  # of the squared length, on the sample, in the first DIMS directions
SAMPLE = 10_000
SHORTLIST = 1000  # exact scores first computed for at least this many rows (10 × n if more)
MAX_SHARE_SCORED = 0.25  # more rows than this share passing the bound: score the full matrix
# The bound's slack for float32 rounding (head products err by ~1e-5; ``rest`` is rounded up).
SLACK = 1e-4
CHUNK = 8192  # rows projected at a time (bounded scratch memory)

Floats = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]


class Reduced:
    """``head`` and ``rest`` of the first ``size`` rows of a matrix, on fitted directions."""

    def __init__(self, basis: Floats, capacity: int) -> None:
        self.basis = basis  # (dimension, DIMS), orthonormal columns
        self.head = np.zeros((capacity, basis.shape[1]), dtype=np.float32)
        self.rest = np.zeros(capacity, dtype=np.float32)
        self.size = 0

    def extend(self, buffer: Floats, size: int) -> None:
        """Project rows ``self.size`` to ``size`` of ``buffer`` (rows appended since)."""
        if size > self.head.shape[0]:
            capacity = max(size, self.head.shape[0] * 2)
            head = np.zeros((capacity, self.head.shape[1]), dtype=np.float32)
            head[: self.size] = self.head[: self.size]
            rest = np.zeros(capacity, dtype=np.float32)
            rest[: self.size] = self.rest[: self.size]
            self.head, self.rest = head, rest
        for start in range(self.size, size, CHUNK):
            rows = buffer[start : min(start + CHUNK, size)]
            head = rows @ self.basis
            left = np.einsum("ij,ij->i", rows, rows, dtype=np.float64) - np.einsum(
                "ij,ij->i", head, head, dtype=np.float64
            )
            # Rounded up: a float32 head's squared length errs by ~1e-6, and the bound must
            # stay an upper bound even for a row lying almost inside the directions.
            self.rest[start : start + len(rows)] = np.sqrt(np.maximum(left, 0.0) + 1e-5)
            self.head[start : start + len(rows)] = head
        self.size = max(self.size, size)

    def nearest(
        self, buffer: Floats, query: Floats, valid: npt.NDArray[np.bool_], n: int
    ) -> tuple[Rows, Floats] | None:
        """The rows of the ``n`` best exact scores among ``valid`` ones and those scores, best
        first; None when the bound prunes too little (the caller scores every row)."""
        size = self.size
        q = query.astype(np.float64)
        q1 = q @ self.basis.astype(np.float64)
        q_rest = float(np.sqrt(max(float(q @ q - q1 @ q1), 0.0) + 1e-9))
        approx = self.head[:size] @ q1.astype(np.float32)
        approx[~valid[:size]] = -np.inf
        count = int(np.count_nonzero(valid[:size]))
        if count == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        short = min(max(SHORTLIST, 10 * n), count)
        listed = np.argpartition(-approx, short - 1)[:short].astype(np.int64)
        listed_scores = buffer[listed] @ query
        if short <= n:
            rows, scores = listed, listed_scores
        else:
            tau = np.partition(listed_scores, short - n)[short - n]  # the n-th best
            upper = approx + np.float32(q_rest) * self.rest[:size] + np.float32(SLACK)
            upper[listed] = -np.inf
            others = np.flatnonzero(upper >= tau)
            if len(others) > MAX_SHARE_SCORED * size:
                return None
            rows = np.concatenate([listed, others])
            scores = np.concatenate([listed_scores, buffer[others] @ query])
        best = np.argsort(-scores, kind="stable")[:n]
        return rows[best], scores[best]


def fit(buffer: Floats, alive: npt.NDArray[np.bool_], size: int, seed: int = 0) -> Reduced | None:
    """Directions fitted on a sample of the live rows (the top eigenvectors of their second
    moment: dot products are not centred), and every row projected; None when the vectors keep
    too little of their length in ``DIMS`` directions for the bound to prune."""
    dimension = buffer.shape[1]
    if size < MIN_ROWS or dimension <= DIMS:
        return None
    live = np.flatnonzero(alive[:size])
    if len(live) < MIN_ROWS:
        return None
    rng = np.random.default_rng(seed)
    sample = buffer[np.sort(rng.choice(live, size=min(SAMPLE, len(live)), replace=False))]
    sample64 = sample.astype(np.float64)
    values, vectors = np.linalg.eigh(sample64.T @ sample64)
    basis = vectors[:, ::-1][:, :DIMS]
    total = float(values.sum())
    if total <= 0 or float(values[::-1][:DIMS].sum()) / total < MIN_HEAD_SHARE:
        return None
    reduced = Reduced(np.ascontiguousarray(basis, dtype=np.float32), buffer.shape[0])
    reduced.extend(buffer, size)
    return reduced
