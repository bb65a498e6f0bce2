"""Hybrid fusion on a question in other words: the answer shares no word with it but the
name, a distractor shares three. Meaning must win; the fusion before the fix (raw cosines,
every text hit counted) let the distractor's words put it first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memwarden import Memwarden, Settings
from memwarden.core import recall_fusion
from recall_support import remember_all, with_model

ANSWER = "Maya holds a weekly one-on-one every Tuesday afternoon."
DISTRACTOR = "Maya caught up on the regular expression bugs."  # "Maya", "regular", "up"
QUESTION = "when does Maya have a regular private catch-up"
# Everything else known about Maya: the neighbourhood every memory of hers shares.
OTHERS = [
    "Maya is pescatarian and never eats red meat.",
    "Maya is allergic to peanuts.",
    "Maya prefers dark mode in every code editor.",
    "Maya commutes to the office by bicycle.",
    "Maya lives in Berlin and works remotely.",
    "Maya writes most services in Rust.",
    "Maya is on holiday for the whole of August.",
    "Maya is an early riser who does deep work at dawn or midnight.",
    "Maya always orders black coffee at the café.",
    "Maya has a dog called Biscuit.",
    "Maya has two daughters in primary school.",
    "Maya's birthday is on March 3.",
    "Maya works as the team's staff engineer.",
    "Maya listens to jazz while coding.",
    "Maya trains for climbing three times a week.",
    "Maya develops on a ThinkPad running Linux.",
    "Maya answers fastest when reached on Slack.",
    "Maya was granted admin rights on the production database.",
    "Maya's goal this year is to become a staff engineer.",
    "Maya keeps the private keys in a hardware token.",
]


Opened = tuple[Memwarden, int, int]  # the store, the answer's id, the distractor's


@pytest.fixture
def opened(settings: Settings) -> Iterator[Opened]:
    with Memwarden.init(with_model(settings)) as mw:
        mw.add_project("p")
        answer, distractor, *_ = remember_all(mw, "p", [ANSWER, DISTRACTOR, *OTHERS])
        yield mw, answer, distractor


def test_meaning_beats_shared_words_on_a_paraphrase(
    opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    mw, answer, distractor = opened
    assert len(OTHERS) + 2 >= recall_fusion.MIN_NEIGHBOURS  # the neighbourhood is centred
    assert mw.recall(QUESTION, "p", k=5)[0].id == answer
    # A question in the memory's own words still ranks by them first.
    assert mw.recall("Maya regular expression bugs", "p", k=1)[0].id == distractor
    # The fixture does catch the regression: without centring and with every text hit
    # counted (the fusion before), the distractor comes first.
    monkeypatch.setattr(recall_fusion, "CENTRE_SHARE", 0.0)
    monkeypatch.setattr(recall_fusion, "TEXT_COVERAGE_GATE", 0.0)
    hits = mw.recall(QUESTION, "p", k=5)
    assert hits[0].id == distractor
    assert answer in [h.id for h in hits]
