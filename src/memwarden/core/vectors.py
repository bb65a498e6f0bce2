"""Stored vectors and the search over them: numpy over a cached float32 matrix per process.

Vectors live in ``embeddings`` (float32 bytes, with their model and dimension) so both engines
hold them the same way. Each process keeps, per (engine, kind, model), a matrix of every
vector; a look at ``vector_generation`` (one row) tells whether anyone wrote or deleted since,
and only then are the new rows (``id`` only grows) appended and the gone ones masked out, so
a vector written by another process is searched as soon as it commits.

``search`` is the one interface: a pgvector (or any ANN) backend can replace ``VectorIndex``
without touching recall.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from memwarden.core import blas, vector_prune
from memwarden.core.embedding import Vectors, as_blob, from_blob
from memwarden.db import schema

E = schema.embeddings
G = schema.vector_generation

MEMORY = "memory"
CHUNK = "chunk"


@dataclass(frozen=True)
class StoredVector:
    item_id: int
    project: str
    content_hash: str
    vector: Vectors


def bump(conn: Connection) -> None:
    conn.execute(update(G).where(G.c.id == 1).values(generation=G.c.generation + 1))


def write(
    conn: Connection,
    kind: str,
    model: str,
    rows: Sequence[StoredVector],
    now: datetime,
) -> None:
    """Replace the vectors of these items for this model (one transaction, the caller's)."""
    if not rows:
        return
    ids = [row.item_id for row in rows]
    conn.execute(delete(E).where(E.c.kind == kind, E.c.model == model, E.c.item_id.in_(ids)))
    conn.execute(
        insert(E),
        [
            {
                "kind": kind,
                "item_id": row.item_id,
                "project": row.project,
                "model": model,
                "dimension": int(row.vector.shape[0]),
                "content_hash": row.content_hash,
                "vector": as_blob(row.vector),
                "created_at": now,
            }
            for row in rows
        ],
    )
    bump(conn)


def delete_items(conn: Connection, kind: str, ids: Sequence[int]) -> int:
    """Every vector of these items, whatever the model (an erasure, a removed chunk)."""
    if not ids:
        return 0
    removed = conn.execute(delete(E).where(E.c.kind == kind, E.c.item_id.in_(list(ids)))).rowcount
    if removed:
        bump(conn)
    return int(removed or 0)


def delete_other_models(conn: Connection, model: str) -> int:
    removed = conn.execute(delete(E).where(E.c.model != model)).rowcount
    if removed:
        bump(conn)
    return int(removed or 0)


def stored_count(conn: Connection, kind: str, model: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(E).where(E.c.kind == kind, E.c.model == model)
        ).scalar_one()
    )


def current_generation(conn: Connection) -> int:
    """The counter every change of the stored vectors bumps (``bump``)."""
    return int(conn.execute(select(G.c.generation).where(G.c.id == 1)).scalar() or 0)


class _Matrix:
    """Every vector of one (kind, model) this process has seen, in a growing buffer."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.size = 0
        self.buffer = np.zeros((1024, dimension), dtype=np.float32)
        self.row_ids = np.zeros(1024, dtype=np.int64)
        self.item_ids = np.zeros(1024, dtype=np.int64)
        self.projects = np.zeros(1024, dtype=np.int32)
        self.alive = np.zeros(1024, dtype=bool)
        self.codes: dict[str, int] = {}
        self.position: dict[int, int] = {}  # item id → its live row
        self.max_row = 0
        self.generation = -1
        # The first pass over fewer dimensions (core/vector_prune.py), once the matrix is large.
        self.reduced: vector_prune.Reduced | None = None
        self.fitted_at = 0  # the size at the last fit (tried: too isotropic a matrix gets None)

    def refresh_reduced(self) -> None:
        """Fit the reduced directions when the matrix reaches their size, again once it has
        doubled; in between, project the rows appended (called under the index's lock)."""
        if self.size >= max(vector_prune.MIN_ROWS, 2 * self.fitted_at):
            self.fitted_at = self.size
            self.reduced = vector_prune.fit(self.buffer, self.alive, self.size)
        elif self.reduced is not None:
            self.reduced.extend(self.buffer, self.size)

    def append(self, rows: list[tuple[int, int, str, bytes]]) -> None:
        need = self.size + len(rows)
        if need > self.buffer.shape[0]:
            capacity = max(need, self.buffer.shape[0] * 2)
            for name in ("buffer", "row_ids", "item_ids", "projects", "alive"):
                old = getattr(self, name)
                grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
                grown[: self.size] = old[: self.size]
                setattr(self, name, grown)
        for row_id, item_id, project, blob in rows:
            at = self.size
            self.buffer[at] = from_blob(blob, self.dimension)
            self.row_ids[at] = row_id
            self.item_ids[at] = item_id
            self.projects[at] = self.codes.setdefault(project, len(self.codes))
            self.alive[at] = True
            previous = self.position.get(item_id)
            if previous is not None:
                self.alive[previous] = False
            self.position[item_id] = at
            self.size += 1
            self.max_row = max(self.max_row, row_id)

    def keep_only(self, live_rows: npt.NDArray[np.int64]) -> None:
        gone = self.alive[: self.size] & ~np.isin(self.row_ids[: self.size], live_rows)
        for at in np.flatnonzero(gone):
            self.alive[at] = False
            item = int(self.item_ids[at])
            if self.position.get(item) == at:
                del self.position[item]

    @property
    def live(self) -> int:
        return int(self.alive[: self.size].sum())


class VectorIndex:
    """The cached matrices of one process, per engine (dropped with it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], _Matrix]]
        self._items = weakref.WeakKeyDictionary()

    def matrix(
        self,
        conn: Connection,
        kind: str,
        model: str,
        dimension: int,
        generation: int | None = None,
    ) -> _Matrix:
        """The matrix, brought up to date with what has committed (one row read when nothing
        changed; none when the caller read the ``generation`` in this transaction)."""
        with self._lock:
            per_engine = self._items.setdefault(conn.engine, {})
            matrix = per_engine.get((kind, model))
            if matrix is None or matrix.dimension != dimension:
                matrix = per_engine[(kind, model)] = _Matrix(dimension)
            if generation is None:
                generation = current_generation(conn)
            if generation == matrix.generation:
                return matrix
            fresh = conn.execute(
                select(E.c.id, E.c.item_id, E.c.project, E.c.vector)
                .where(E.c.model == model, E.c.kind == kind, E.c.id > matrix.max_row)
                .order_by(E.c.id)
            ).all()
            matrix.append([(int(r.id), int(r.item_id), r.project, bytes(r.vector)) for r in fresh])
            if stored_count(conn, kind, model) != matrix.live:
                live = np.fromiter(
                    conn.execute(
                        select(E.c.id).where(E.c.model == model, E.c.kind == kind)
                    ).scalars(),
                    dtype=np.int64,
                )
                matrix.keep_only(live)
            with blas.one_thread():
                matrix.refresh_reduced()
            matrix.generation = generation
            return matrix

    def neighbours(
        self,
        conn: Connection,
        kind: str,
        model: str,
        query: Vectors,
        project: str | None,
        n: int,
        extra: Sequence[int] = (),
        allowed: frozenset[int] | None = None,
    ) -> Neighbours:
        """The ``n`` live items nearest ``query`` (vectors are unit length) in ``project``, best
        first, then those of ``extra`` that have a vector there, each with its cosine and a
        copy of its vector (recall re-scores them against their neighbourhood). ``allowed``:
        only these items may be among the nearest (a metadata filter, applied before the cut)."""
        matrix = self.matrix(conn, kind, model, int(query.shape[0]))
        return self.with_extra(self.nearest(matrix, query, project, n, allowed), query, extra)

    def nearest(
        self,
        matrix: _Matrix,
        query: Vectors,
        project: str | None,
        n: int,
        allowed: frozenset[int] | None = None,
    ) -> Nearest:
        """The ``n`` best rows of ``matrix`` as it is now (no database read: a recall refreshes
        the matrix in its transaction, then searches it on the thread that embedded its query)."""
        with self._lock, blas.one_thread():  # memory-bound: a thread pool only spins (blas.py)
            size = matrix.size
            valid = matrix.alive[:size].copy()
            if project is not None:
                code = matrix.codes.get(project)
                valid &= matrix.projects[:size] == (code if code is not None else -1)
            if allowed is not None:
                wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
                valid &= np.isin(matrix.item_ids[:size], wanted)
            found = None
            if matrix.reduced is not None and matrix.reduced.size == size:
                found = matrix.reduced.nearest(matrix.buffer, query, valid, n)
            if found is None:
                scores = matrix.buffer[:size] @ query
                scores[~valid] = -np.inf
                picked = _best(scores, n)
                found = picked, scores[picked]
            return Nearest(matrix, size, valid, found[0], found[1], n)

    def with_extra(self, near: Nearest, query: Vectors, extra: Sequence[int] = ()) -> Neighbours:
        """``near``'s items, then those of ``extra`` with a vector among the rows it searched."""
        matrix, size, valid = near.matrix, near.size, near.valid
        with self._lock, blas.one_thread():
            chosen = set(near.rows.tolist())
            more = []
            for item in extra:
                at = matrix.position.get(item)
                if at is not None and at < size and at not in chosen and valid[at]:
                    chosen.add(at)
                    more.append(at)
            rows = np.concatenate([near.rows, np.asarray(more, dtype=np.int64)])
            vectors = matrix.buffer[rows]  # fancy indexing copies: safe after the lock
            return Neighbours(
                [int(i) for i in matrix.item_ids[rows]],
                np.concatenate([near.cosines, vectors[len(near.rows) :] @ query]).astype(
                    np.float32
                ),
                vectors,
                len(near.rows),
            )

    def forget(self, engine: Engine) -> None:
        with self._lock:
            self._items.pop(engine, None)


INDEX = VectorIndex()


@dataclass(frozen=True)
class Nearest:
    """The best rows of one search of a matrix: the first ``size`` rows were searched, those
    ``valid`` (alive, in ``project``, allowed) could be chosen."""

    matrix: _Matrix
    size: int
    valid: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.int64]
    cosines: npt.NDArray[np.float32]
    asked: int  # how many were asked for (``rows`` is shorter when fewer rows were valid)


@dataclass(frozen=True)
class Neighbours:
    """Items near a query: the ``nearest`` first (best first), then the extra ones asked for."""

    ids: list[int]
    cosines: npt.NDArray[np.float32]
    vectors: npt.NDArray[np.float32]  # one row per id
    nearest: int


def _best(scores: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.int64]:
    """Indexes of the ``n`` best finite scores, best first."""
    if scores.size == 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    n = min(n, scores.size)
    picked = np.argpartition(-scores, n - 1)[:n]
    picked = picked[np.argsort(-scores[picked], kind="stable")]
    return picked[np.isfinite(scores[picked])].astype(np.int64)
