"""Doctor checks for recall: does the embedder load, and is every vector written?"""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.core.doctor import Check, CheckResult, DoctorContext


def check_embedder(ctx: DoctorContext) -> Iterable[CheckResult]:
    blocked = ctx.need_store("recall_embedder")
    if blocked is not None:
        yield blocked
        return
    assert ctx.memwarden is not None
    report = ctx.memwarden.embedding_status(load=True)
    data = {"embedder": report.embedder, "model": report.model}
    if report.embedder == "none":
        yield CheckResult(
            "recall_embedder",
            "warn",
            "no embedder configured (MEMWARDEN_EMBEDDER=none): recall by full text only",
            data,
        )
        return
    if not report.available:
        yield CheckResult(
            "recall_embedder",
            "fail",
            f"{report.error}; recall falls back to full text",
            data,
        )
        return
    yield CheckResult("recall_embedder", "ok", f"{report.embedder}: {report.model}", data)
    counts = {
        "missing": report.missing,
        "orphans": report.orphans,
        "memory_vectors": report.memory_vectors,
        "chunk_vectors": report.chunk_vectors,
    }
    if report.missing:
        yield CheckResult(
            "recall_vectors",
            "warn",
            f"{report.missing} memories or chunks have no current vector (recall by meaning "
            "misses them): run `memwarden index rebuild`",
            counts,
        )
    else:
        yield CheckResult("recall_vectors", "ok", "every memory and chunk has its vector", counts)


CHECKS: list[Check] = [check_embedder]
