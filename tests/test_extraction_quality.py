"""The rule-based extractor's precision and recall on the labelled corpus, and the scoring.

``tests/fixtures/extraction_corpus.jsonl`` holds realistic exchanges of four kinds of agent
(coding, research, ops, personal assistant), negatives included, each with its expected
memories (a type and a key phrase). Splits: ``dev`` (written first, used to write the
patterns), ``dev2`` and ``dev3`` (held out once each, then used to improve the patterns) and
``heldout`` (written after the patterns were frozen at version 1.2; never tuned on). Do not
tune the patterns on ``heldout``: if you must, relabel it ``dev4`` and write a new held-out
set after the change, so the held-out score stays an honest estimate.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from memwarden.config import DEFAULT_MEMORY_TYPES
from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate
from memwarden.core.extraction.rules import RuleExtractor
from memwarden.core.extraction.scoring import (
    Expected,
    Score,
    evaluate,
    load_corpus,
    matches,
    score_case,
)

CORPUS = Path(__file__).parent / "fixtures" / "extraction_corpus.jsonl"
PRECISION_FLOOR = 0.8
RECALL_FLOOR = 0.6
# The held-out split's measured scores at version 1.2, unchanged at 1.3 (precision 0.71, recall
# 0.31): a change that scores below these on text the patterns never saw is a regression.
HELDOUT_PRECISION_FLOOR = 0.7
HELDOUT_RECALL_FLOOR = 0.3


def test_the_corpus_is_large_varied_and_well_formed() -> None:
    cases = load_corpus(CORPUS)
    assert len(cases) >= 60 and len({c.id for c in cases}) == len(cases)
    splits = Counter(c.split for c in cases)
    assert splits["heldout"] == 20
    agents = Counter(c.agent for c in cases)
    assert set(agents) == {"coding", "research", "ops", "personal"}
    assert sum(1 for c in cases if not c.expected) >= 15, "negatives: nothing worth remembering"
    types = Counter(e.type for c in cases for e in c.expected)
    assert set(types) == set(DEFAULT_MEMORY_TYPES)
    for case in cases:
        for expected in case.expected:
            assert expected.key.strip() and expected.key.lower() == expected.key


def test_precision_and_recall_on_the_corpus_meet_their_floors() -> None:
    score = evaluate(RuleExtractor(), load_corpus(CORPUS))
    report = f"{score.to_dict()} misses={score.misses} false={score.false_positives}"
    assert score.precision >= PRECISION_FLOOR, report
    assert score.recall >= RECALL_FLOOR, report


def test_the_held_out_split_does_not_regress() -> None:
    held_out = [c for c in load_corpus(CORPUS) if c.split == "heldout"]
    score = evaluate(RuleExtractor(), held_out)
    assert score.precision >= HELDOUT_PRECISION_FLOOR, score.to_dict()
    assert score.recall >= HELDOUT_RECALL_FLOOR, score.to_dict()


def _candidate(type_: str, content: str) -> Candidate:
    return Candidate(type_, content, 0.7, 1)


def test_a_match_needs_the_type_and_the_key_phrase_in_the_normalised_text() -> None:
    expected = Expected("preference", "tabs over spaces")
    assert matches(_candidate("preference", "I prefer  TABS over spaces."), expected)
    assert not matches(_candidate("knowledge", "I prefer tabs over spaces."), expected)
    assert not matches(_candidate("preference", "I prefer tabs."), expected)


def test_scoring_counts_false_positives_and_misses() -> None:
    score = Score()
    expected = [Expected("preference", "tabs"), Expected("identity", "ada")]
    score_case(
        score,
        "x",
        [_candidate("preference", "I like tabs"), _candidate("project", "noise")],
        expected,
    )
    score_case(score, "y", [], [Expected("project", "postgres")])
    score_case(score, "z", [], [])
    assert (score.precision, score.recall) == (0.5, 1 / 3)
    assert [case for case, _ in score.misses] == ["x", "y"]
    assert [case for case, _ in score.false_positives] == ["x"]


class _Everything:
    """Proposes every sentence of the prompt as a preference: what the floors guard against."""

    name = "everything"
    version = "0"

    def extract(self, interaction: Interaction) -> list[Candidate]:
        return [_candidate("preference", s) for s in interaction.prompt.split(". ") if s.strip()]

    def close(self) -> None:
        return None


def test_a_careless_extractor_fails_the_floors() -> None:
    score = evaluate(_Everything(), load_corpus(CORPUS))
    assert score.precision < PRECISION_FLOOR and score.recall < RECALL_FLOOR
