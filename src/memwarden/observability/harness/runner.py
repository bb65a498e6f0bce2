"""Running the cases: each query through a recall callable, its top k held to what it expects.

The harness knows no database and no domain: it is handed ``recall``, a callable that answers
one case with ranked hits (anything with ``kind``, ``id`` and ``content``). An expected id is
found when a memory hit in the top k has it; an expected text when it appears in the content
of a hit in the top k (case and runs of whitespace ignored). A case whose recall raises a
memwarden error (an unknown project, a type that does not exist) fails with that error; any
other exception ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from memwarden.errors import MemwardenError
from memwarden.observability.harness.fixtures import Fixtures, HarnessCase

PREVIEW_CHARS = 160


class RecalledHit(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> int: ...

    @property
    def content(self) -> str: ...


Recall = Callable[[HarnessCase], Sequence[RecalledHit]]
Progress = Callable[[int], None]


def squash(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CaseResult:
    case: HarnessCase
    passed: bool
    missing_ids: tuple[int, ...] = ()
    missing_text: tuple[str, ...] = ()
    got: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def failure(self) -> dict[str, Any]:
        """What a run records of a failing case: the query, what it expected, what came back."""
        return {
            "project": self.case.project,
            "name": self.case.name,
            "query": self.case.query,
            "k": self.case.k,
            "expected": self.case.expected(),
            "missing": {"ids": list(self.missing_ids), "text": list(self.missing_text)},
            "got": list(self.got),
            "error": self.error,
        }


@dataclass(frozen=True)
class HarnessResult:
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    source: str
    results: tuple[CaseResult, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r.failure() for r in self.results if not r.passed]


def check(case: HarnessCase, hits: Sequence[RecalledHit]) -> CaseResult:
    top = list(hits)[: case.k]
    memory_ids = {hit.id for hit in top if hit.kind == "memory"}
    contents = [squash(hit.content) for hit in top]
    missing_ids = tuple(i for i in case.expect_ids if i not in memory_ids)
    missing_text = tuple(
        t for t in case.expect_text if not any(squash(t) in content for content in contents)
    )
    got = tuple({"kind": hit.kind, "id": hit.id, "preview": _preview(hit.content)} for hit in top)
    passed = not missing_ids and not missing_text
    return CaseResult(case, passed, missing_ids, missing_text, got)


def run(fixtures: Fixtures, recall: Recall, progress: Progress | None = None) -> HarnessResult:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    results: list[CaseResult] = []
    for done, case in enumerate(fixtures.cases, start=1):
        try:
            hits = recall(case)
        except MemwardenError as exc:
            results.append(
                CaseResult(case, False, case.expect_ids, case.expect_text, error=str(exc))
            )
        else:
            results.append(check(case, hits))
        if progress is not None:
            progress(done)
    return HarnessResult(
        started_at=started,
        finished_at=datetime.now(UTC),
        duration_ms=(time.perf_counter() - clock) * 1000.0,
        source=fixtures.source,
        results=tuple(results),
    )


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"
