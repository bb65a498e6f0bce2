"""Scoring an extractor against a labelled corpus: precision and recall.

A candidate matches an expected memory when their types agree and the expected key phrase
appears in the candidate's normalised text. Precision is the share of candidates that match
some expected memory; recall is the share of expected memories some candidate matches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate, Extractor
from memwarden.core.text import normalise


@dataclass(frozen=True)
class Expected:
    type: str
    key: str


@dataclass(frozen=True)
class Case:
    id: str
    split: str
    prompt: str
    response: str
    expected: tuple[Expected, ...]
    project: str = "corpus"
    agent: str = ""


@dataclass
class Score:
    candidates: int = 0
    matched_candidates: int = 0
    expected: int = 0
    found_expected: int = 0
    misses: list[tuple[str, Expected]] = field(default_factory=list)
    false_positives: list[tuple[str, Candidate]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.matched_candidates / self.candidates if self.candidates else 1.0

    @property
    def recall(self) -> float:
        return self.found_expected / self.expected if self.expected else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "candidates": self.candidates,
            "expected": self.expected,
        }


def load_corpus(path: Path) -> list[Case]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        data = json.loads(line)
        try:
            cases.append(
                Case(
                    id=str(data["id"]),
                    split=str(data.get("split", "dev")),
                    prompt=data["prompt"],
                    response=data["response"],
                    expected=tuple(Expected(e["type"], e["key"]) for e in data["expected"]),
                    project=data.get("project", "corpus"),
                    agent=data.get("agent", ""),
                )
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: malformed corpus case ({exc})") from None
    return cases


def matches(candidate: Candidate, expected: Expected) -> bool:
    return candidate.type == expected.type and normalise(expected.key) in normalise(
        candidate.content
    )


def score_case(
    score: Score, case_id: str, candidates: Sequence[Candidate], expected: Sequence[Expected]
) -> None:
    score.candidates += len(candidates)
    score.expected += len(expected)
    for candidate in candidates:
        if any(matches(candidate, e) for e in expected):
            score.matched_candidates += 1
        else:
            score.false_positives.append((case_id, candidate))
    for e in expected:
        if any(matches(c, e) for c in candidates):
            score.found_expected += 1
        else:
            score.misses.append((case_id, e))


def as_interaction(case: Case, number: int) -> Interaction:
    return Interaction(
        id=number,
        project=case.project,
        prompt=case.prompt,
        response=case.response,
        client=case.agent,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def evaluate(extractor: Extractor, cases: Iterable[Case]) -> Score:
    score = Score()
    for number, case in enumerate(cases, start=1):
        score_case(score, case.id, extractor.extract(as_interaction(case, number)), case.expected)
    return score
