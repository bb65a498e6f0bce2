"""The vector index as an operator sees it: its status, and a rebuild."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from memwarden.core import vectors
from memwarden.core.embedding import EmbedderUnavailable
from memwarden.core.embedding.worker import ERASED, missing, orphans, sweep
from memwarden.core.runtime import Runtime
from memwarden.db import schema
from memwarden.errors import MemwardenError
from memwarden.observability.integrity.context import CheckOutcome, CheckSpec, ScanContext
from memwarden.observability.integrity.findings import Finding, RepairRecord

M, C, E = schema.memories, schema.source_chunks, schema.embeddings


class IndexUnavailableError(MemwardenError):
    """The index cannot be built: no embedder, or it does not load."""


@dataclass(frozen=True)
class IndexStatus:
    embedder: str  # local, openai or none
    model: str | None
    available: bool
    error: str | None
    memories: int
    chunks: int
    memory_vectors: int
    chunk_vectors: int
    missing_memories: list[int]
    missing_chunks: list[int]
    orphans: int
    other_models: int
    runtime: str | None = None  # what runs the local model once loaded
    runtime_fallback: str | None = None  # why numpy runs it, when it does

    @property
    def missing(self) -> int:
        return len(self.missing_memories) + len(self.missing_chunks)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["missing_memories"] = self.missing_memories[:20]
        data["missing_chunks"] = self.missing_chunks[:20]
        data["missing"] = self.missing
        return data


def status(rt: Runtime, *, load: bool = False) -> IndexStatus:
    """What is indexed for the configured model; ``load`` also tries the embedder."""
    model = rt.embedders.model_id
    error = rt.embedders.error
    available = False
    if model is None:
        error = "no embedder is configured (MEMWARDEN_EMBEDDER=none)"
    elif load:
        try:
            rt.embedders.get()
            available = True
        except EmbedderUnavailable as exc:
            error = str(exc)
    else:
        available = error is None
    with rt.read() as conn:
        memories = int(
            conn.execute(
                select(func.count()).select_from(M).where(M.c.status != ERASED)
            ).scalar_one()
        )
        chunks = int(conn.execute(select(func.count()).select_from(C)).scalar_one())
        counts: dict[tuple[str, bool], int] = {}
        for r in conn.execute(
            select(E.c.kind, E.c.model, func.count().label("n")).group_by(E.c.kind, E.c.model)
        ):
            key = (r.kind, r.model == model)
            counts[key] = counts.get(key, 0) + int(r.n)
        lost_memories = missing(conn, vectors.MEMORY, model) if model else []
        lost_chunks = missing(conn, vectors.CHUNK, model) if model else []
        orphaned = orphans(conn)
    return IndexStatus(
        rt.settings.embedder,
        model,
        available,
        error,
        memories,
        chunks,
        counts.get((vectors.MEMORY, True), 0),
        counts.get((vectors.CHUNK, True), 0),
        lost_memories,
        lost_chunks,
        orphaned,
        sum(n for (_, current), n in counts.items() if not current),
        *rt.embedders.runtime,
    )


def rebuild(
    rt: Runtime, progress: Callable[[int, int], None] | None = None, *, full: bool = False
) -> int:
    """Write every missing or stale vector and drop orphans and other models' vectors
    (``full``: drop this model's too and embed everything again). Raises
    ``IndexUnavailableError`` when there is no embedder to build with."""
    try:
        embedder = rt.embedders.get()
    except EmbedderUnavailable as exc:
        raise IndexUnavailableError(f"cannot build the vector index: {exc}") from exc
    with rt.store.write() as unit:
        vectors.delete_other_models(unit.conn, embedder.model_id)
        if full:
            unit.conn.execute(delete(E))
            vectors.bump(unit.conn)
    try:
        return sweep(rt.store, rt.embedders, progress)
    except EmbedderUnavailable as exc:
        raise IndexUnavailableError(f"the vector index rebuild stopped: {exc}") from exc


# -- the integrity scan's check and its repair --------------------------------------------------
VECTORS_CHECK = "vectors"


def vector_check(rt: Runtime) -> CheckSpec:
    """A check of the integrity scan: memories and chunks with no vector of the configured
    model (or one of content that has changed since), and vectors of erased or gone items."""
    model = rt.embedders.model_id

    def check(ctx: ScanContext) -> CheckOutcome:
        if model is None:
            return CheckOutcome(skipped="no embedder is configured (MEMWARDEN_EMBEDDER=none)")
        lost = missing(ctx.conn, vectors.MEMORY, model)
        lost_chunks = missing(ctx.conn, vectors.CHUNK, model)
        orphaned = orphans(ctx.conn)
        findings = []
        if lost or lost_chunks:
            findings.append(
                Finding.of(
                    VECTORS_CHECK,
                    "warning",
                    [*lost, *[f"chunk:{i}" for i in lost_chunks]],
                    f"{len(lost)} memories and {len(lost_chunks)} chunks have no current vector "
                    f"of {model} (recall by meaning misses them; --fix re-embeds)",
                )
            )
        if orphaned:
            findings.append(
                Finding.of(
                    f"{VECTORS_CHECK}_orphaned",
                    "warning",
                    [],
                    f"{orphaned} vectors belong to erased or removed items (--fix deletes them)",
                )
            )
        return CheckOutcome(findings=findings, scanned=ctx.count("memories"))

    return CheckSpec(VECTORS_CHECK, check)


def repair_vectors(rt: Runtime) -> RepairRecord:
    """``--fix`` for the vectors check: embed what is missing or stale, drop orphans."""
    try:
        written = rebuild(rt)
    except IndexUnavailableError as exc:
        return RepairRecord(VECTORS_CHECK, "index", "re-embed", str(exc), False, str(exc))
    return RepairRecord(VECTORS_CHECK, "index", "re-embed", f"wrote {written} vectors", True)
