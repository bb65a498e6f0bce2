"""``missing``: which memories and chunks need a vector, and a plan that reads each side once
even when PostgreSQL's statistics are stale (taken before the vectors were written)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from conftest import raw_engine
from memwarden import Memwarden
from memwarden.core import vectors
from memwarden.core.embedding.worker import missing, missing_query
from memwarden.db import schema

MODEL = "test-model"


def _vector(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(8).astype(np.float32)
    return v / np.linalg.norm(v)


def _store(mw: Memwarden, kind: str, items: list[tuple[int, str]]) -> None:
    stored = [vectors.StoredVector(i, "p", h, _vector(i)) for i, h in items]
    with mw.store.write() as unit:
        vectors.write(unit.conn, kind, MODEL, stored, datetime.now(UTC))


def test_missing_finds_items_without_a_current_vector(mw: Memwarden) -> None:
    mw.add_project("p")
    ids = [mw.remember("p", f"Fact number {n} about the launch.").memory.id for n in range(5)]
    mw.ingest_text("p", "notes.md", "# One\n\nFirst part.\n\n# Two\n\nSecond part.\n")
    m, c = schema.memories, schema.source_chunks
    with mw.store.read() as conn:
        hashes = dict(conn.execute(sa.select(m.c.id, m.c.content_hash)).all())
        chunks = sorted(conn.execute(sa.select(c.c.id)).scalars())
    assert len(chunks) >= 2
    # ids[0]: a current vector; ids[1]: a vector of older content; the rest none.
    _store(mw, vectors.MEMORY, [(ids[0], hashes[ids[0]]), (ids[1], "0" * 64)])
    _store(mw, vectors.CHUNK, [(chunks[0], "any")])
    mw.erase(ids[4], reason="test")  # an erased memory needs no vector
    with mw.store.read() as conn:
        assert missing(conn, vectors.MEMORY, MODEL) == ids[1:4]
        assert missing(conn, vectors.MEMORY, MODEL, limit=1)[0] in ids[1:4]
        assert missing(conn, vectors.CHUNK, MODEL) == chunks[1:]
        assert missing(conn, vectors.MEMORY, "another-model") == ids[:4]


def test_each_side_is_read_once_even_with_stale_statistics(mw: Memwarden, engine_name: str) -> None:
    """On PostgreSQL: statistics taken while the vectors table was empty, then 3,000 vectors
    written. As a join, the planner set "all six" vectors aside and compared every memory with
    every vector (and per item, it scanned them all for each); a set difference cannot."""
    if engine_name != "postgresql":
        return
    mw.add_project("p")
    for n in range(20):
        mw.remember("p", f"Fact number {n} about the launch.")
    raw = raw_engine(mw.settings)
    try:
        with raw.begin() as conn:
            conn.execute(sa.text("ANALYZE embeddings"))
        _store(mw, vectors.MEMORY, [(10_000 + i, "x") for i in range(3_000)])
        for kind in (vectors.MEMORY, vectors.CHUNK):
            for limit in (1, None):
                query = missing_query(kind, MODEL, limit).compile(
                    dialect=raw.dialect, compile_kwargs={"literal_binds": True}
                )
                with raw.begin() as conn:
                    plan = "\n".join(conn.execute(sa.text(f"EXPLAIN {query}")).scalars())
                assert "SetOp" in plan, plan  # each side read once
                assert "Nested Loop" not in plan and "SubPlan" not in plan, plan
    finally:
        raw.dispose()
