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
    data = {"embedder": report.embedder, "model": report.model, "runtime": report.runtime}
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
    runs_on = f" ({report.runtime})" if report.runtime else ""
    yield CheckResult("recall_embedder", "ok", f"{report.embedder}: {report.model}{runs_on}", data)
    if report.runtime_fallback:
        yield CheckResult(
            "recall_embedder_runtime",
            "warn",
            f"the local model runs on numpy, about half as fast: {report.runtime_fallback} "
            "(reinstall memwarden's dependencies: pip install 'onnxruntime>=1.30')",
            {"runtime": report.runtime, "reason": report.runtime_fallback},
        )
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
