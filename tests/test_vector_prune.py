"""The reduced first pass over large matrices (core/vector_prune.py) finds exactly the items the
full product finds, through every mask and after appends and erasures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest

from memwarden import Memwarden, Settings
from memwarden.core import vector_prune, vectors
from memwarden.core.vectors import StoredVector, _best

DIMENSION = 384
Floats = npt.NDArray[np.float32]


def embeddings_like(count: int, seed: int) -> Floats:
    """Unit vectors shaped like sentence embeddings: a shared direction, a decaying spectrum
    and clusters (a topic's members close together)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(1.0 + np.arange(DIMENSION)) ** 1.4
    centres = rng.standard_normal((40, DIMENSION)) * scale * 1.5
    shared = np.zeros(DIMENSION)
    shared[0] = 2.0
    rows = centres[rng.integers(0, 40, count)] + rng.standard_normal((count, DIMENSION)) * scale
    rows += shared
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def exact(buffer: Floats, query: Floats, valid: npt.NDArray[np.bool_], n: int) -> set[int]:
    scores = buffer @ query
    scores[~valid] = -np.inf
    return set(_best(scores, n).tolist())


def test_the_pruned_pass_finds_the_exact_top_n() -> None:
    buffer = embeddings_like(30_000, seed=1)
    queries = embeddings_like(40, seed=2)
    alive = np.ones(len(buffer), dtype=bool)
    reduced = vector_prune.fit(buffer, alive, len(buffer))
    assert reduced is not None
    valid = alive.copy()
    valid[::5] = False  # erased rows, another project, a metadata filter: masked out
    for query in queries:
        found = reduced.nearest(buffer, query, valid, 50)
        assert found is not None
        rows, scores = found
        assert set(rows.tolist()) == exact(buffer, query, valid, 50)
        np.testing.assert_allclose(scores, buffer[rows] @ query, rtol=1e-6, atol=1e-6)
        assert list(scores) == sorted(scores, reverse=True)
        assert valid[rows].all()


def test_rows_only_the_bound_brings_back_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per query, 20 answers (the query itself, nudged: their first directions hold a little
    less of them) and 300 decoys (the query's first directions only: they lead the first pass
    but score lower exactly). The shortlist is all decoys; the answers come back only through
    the bound — appended after the fit, as rows written since are."""
    monkeypatch.setattr(vector_prune, "SHORTLIST", 0)  # a shortlist of 10 × n rows
    base = embeddings_like(30_000, seed=1)
    fitted = vector_prune.fit(base, np.ones(len(base), dtype=bool), len(base))
    assert fitted is not None
    rng = np.random.default_rng(10)
    basis = fitted.basis.astype(np.float64)
    for query in embeddings_like(8, seed=11):
        head = basis @ (basis.T @ query.astype(np.float64))
        answers = query + 0.004 * rng.standard_normal((20, DIMENSION))
        decoys = head / np.linalg.norm(head) + 0.002 * rng.standard_normal((300, DIMENSION))
        extra = np.vstack([answers, decoys])
        extra /= np.linalg.norm(extra, axis=1, keepdims=True)
        buffer = np.vstack([base, extra.astype(np.float32)])
        reduced = vector_prune.Reduced(fitted.basis, len(buffer))
        reduced.extend(buffer, len(buffer))
        valid = np.ones(len(buffer), dtype=bool)
        first = reduced.head[: len(buffer)] @ (query @ fitted.basis)
        assert not set(_best(first, 200).tolist()) & set(range(30_000, 30_020))
        found = reduced.nearest(buffer, query, valid, 20)
        assert found is not None
        assert exact(buffer, query, valid, 20) == set(range(30_000, 30_020))
        assert set(found[0].tolist()) == set(range(30_000, 30_020))


def test_isotropic_vectors_are_not_reduced_and_small_matrices_stay_exact() -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((30_000, DIMENSION)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    assert vector_prune.fit(noise, np.ones(len(noise), dtype=bool), len(noise)) is None
    small = embeddings_like(vector_prune.MIN_ROWS - 1, seed=4)
    assert vector_prune.fit(small, np.ones(len(small), dtype=bool), len(small)) is None


def test_too_few_valid_rows_or_a_loose_bound_fall_back() -> None:
    buffer = embeddings_like(25_000, seed=5)
    reduced = vector_prune.fit(buffer, np.ones(len(buffer), dtype=bool), len(buffer))
    assert reduced is not None
    query = embeddings_like(1, seed=6)[0]
    few = np.zeros(len(buffer), dtype=bool)
    few[[3, 70, 900]] = True
    rows, _ = reduced.nearest(buffer, query, few, 50)  # type: ignore[misc]
    assert set(rows.tolist()) == {3, 70, 900}
    # A query orthogonal to every fitted direction: the bound prunes nothing, and says so.
    away = np.random.default_rng(7).standard_normal(DIMENSION)
    basis = reduced.basis.astype(np.float64)
    away -= basis @ (basis.T @ away)
    away /= np.linalg.norm(away)
    assert reduced.nearest(buffer, away.astype(np.float32), np.ones(len(buffer), bool), 50) is None


@pytest.fixture
def store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Memwarden]:
    # A small matrix reduced as a large one is: the same code, seconds instead of minutes.
    monkeypatch.setattr(vector_prune, "MIN_ROWS", 400)
    monkeypatch.setattr(vector_prune, "SAMPLE", 400)
    monkeypatch.setattr(vector_prune, "SHORTLIST", 20)
    monkeypatch.setattr(vector_prune, "MAX_SHARE_SCORED", 1.0)
    with Memwarden.init(settings) as mw:
        mw.add_project("a")
        mw.add_project("b")
        yield mw


def _write(mw: Memwarden, start: int, rows: Floats) -> None:
    stored = [
        StoredVector(start + i, "a" if i % 3 else "b", f"h{start + i}", row)
        for i, row in enumerate(rows)
    ]
    with mw.store.write() as unit:
        vectors.write(unit.conn, vectors.MEMORY, "m", stored, datetime.now(UTC))


def test_the_index_serves_the_same_neighbours_reduced_or_not(
    store: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = embeddings_like(1300, seed=8)
    _write(store, 1, data[:600])
    index = vectors.VectorIndex()
    full = vectors.VectorIndex()
    queries = embeddings_like(12, seed=9)

    def both(**options: object) -> None:
        for query in queries:
            with store.store.read() as conn:
                got = index.neighbours(conn, vectors.MEMORY, "m", query, n=30, **options)  # type: ignore[arg-type]
                with monkeypatch.context() as patch:
                    patch.setattr(vector_prune, "MIN_ROWS", 10**9)
                    want = full.neighbours(conn, vectors.MEMORY, "m", query, n=30, **options)  # type: ignore[arg-type]
            assert got.ids[: got.nearest] == want.ids[: want.nearest]
            assert got.ids[got.nearest :] == want.ids[want.nearest :]
            np.testing.assert_allclose(got.cosines, want.cosines, atol=1e-5)
            np.testing.assert_array_equal(got.vectors, want.vectors)

    both(project="a")
    with store.store.read() as conn:
        matrix = index.matrix(conn, vectors.MEMORY, "m", DIMENSION)
        assert matrix.reduced is not None and matrix.reduced.size == 600
    both(project="b", extra=[5, 6, 7, 599], allowed=frozenset(range(1, 400, 2)))
    _write(store, 601, data[600:700])  # appended: projected on the directions in use
    with store.store.write() as unit:
        vectors.delete_items(unit.conn, vectors.MEMORY, list(range(1, 200)))  # erased
    both(project="a", extra=[3, 650])
    with store.store.read() as conn:
        matrix = index.matrix(conn, vectors.MEMORY, "m", DIMENSION)
        assert matrix.reduced is not None and matrix.reduced.size == 700
        first_fit = matrix.fitted_at
    _write(store, 701, data[700:1300])  # doubled since the fit: fitted again
    both(project=None)
    with store.store.read() as conn:
        matrix = index.matrix(conn, vectors.MEMORY, "m", DIMENSION)
        assert matrix.fitted_at == 1300 > first_fit and matrix.reduced is not None
