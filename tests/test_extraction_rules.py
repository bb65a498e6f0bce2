"""The rule-based extractor on its own: types, what it skips, confidence, determinism."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate
from memwarden.core.extraction.rules import RuleExtractor
from memwarden.core.extraction.sentences import clauses, sentences


def extract(prompt: str, response: str = "OK.") -> list[Candidate]:
    return RuleExtractor().extract(Interaction(7, "atlas", prompt, response, "", datetime.now(UTC)))


def kinds(prompt: str, response: str = "OK.") -> list[tuple[str, str]]:
    return [(c.type, c.content) for c in extract(prompt, response)]


@pytest.mark.parametrize(
    ("prompt", "type_"),
    [
        ("My name is Ada and I'm a data engineer at Lumen.", "identity"),
        ("I prefer dark mode in every editor.", "preference"),
        ("From now on, answer in French.", "adaptation"),
        ("We decided to drop support for Python 3.9.", "project"),
        ("Yesterday we migrated half of the users and the rollout went fine.", "project"),
        ("Last Friday I gave the keynote at PyCon.", "episodic"),
        ("TIL: SQLite ignores foreign keys unless you turn them on per connection.", "knowledge"),
    ],
)
def test_each_cue_family_yields_its_type(prompt: str, type_: str) -> None:
    found = extract(prompt)
    assert found and found[0].type == type_, found
    assert all(c.interaction_id == 7 and 0 < c.confidence <= 1 and c.cue for c in found)


def test_two_statements_in_one_sentence_become_two_candidates() -> None:
    found = kinds("I live in Porto and I usually take the bus to work.")
    assert found == [
        ("identity", "I live in Porto."),
        ("preference", "I usually take the bus to work."),
    ]


@pytest.mark.parametrize(
    "prompt",
    [
        "Do you prefer tabs or spaces?",
        "Can you write a function that parses dates?",
        "If we decided to use Rust, how long would the port take?",
        "I love it, thanks!",
        "The build is broken again.",
        "```python\n# I prefer tabs\nx = 1\n```",
        "Traceback (most recent call last):\n    raise ValueError('we decided to fail')",
        "Hmm, that didn't work either. Try the other approach.",
    ],
)
def test_questions_requests_reactions_states_and_code_state_nothing(prompt: str) -> None:
    assert extract(prompt) == []


def test_the_assistant_contributes_lessons_decisions_and_flagged_facts_only() -> None:
    response = "I prefer a functional style. The root cause was a stale lock file."
    found = extract("Why does the build hang?", response)
    assert [(c.type, c.content, c.side) for c in found] == [
        ("knowledge", "The root cause was a stale lock file.", "assistant")
    ]
    assert found[0].confidence < extract("The root cause was a stale lock file.")[0].confidence
    assert extract("The root cause was a stale lock file.")[0].side == "user"
    # Stated by the agent: a team decision, a fact flagged to remember. Both sides are read,
    # and each candidate says which side it came from.
    found = extract(
        "I prefer tabs over spaces.",
        "We decided to use PostgreSQL for the billing service. "
        "Remember that the staging cluster lives in Frankfurt.",
    )
    assert [(c.type, c.content, c.side) for c in found] == [
        ("preference", "I prefer tabs over spaces.", "user"),
        ("project", "We decided to use PostgreSQL for the billing service.", "assistant"),
        ("project", "Remember that the staging cluster lives in Frankfurt.", "assistant"),
    ]
    # What the assistant decided, planned or notes for itself is nobody's memory.
    for response in (
        "I decided to refactor the parser first.",
        "Note that this function returns None.",
        "I'm going to run the tests now.",
        "We could decide to use Redis later.",
        "Did we decide to use Redis?",
    ):
        assert extract("Go ahead.", response) == [], response


def test_hedging_lowers_confidence_and_emphasis_raises_it() -> None:
    plain = extract("I prefer short commit messages.")[0].confidence
    hedged = extract("I think I prefer short commit messages.")[0].confidence
    firm = extract("I really prefer short commit messages.")[0].confidence
    assert hedged < plain < firm


def test_labels_and_fillers_are_trimmed_from_the_statement() -> None:
    assert kinds("Btw, I prefer pytest over unittest") == [
        ("preference", "I prefer pytest over unittest.")
    ]
    assert kinds("Note to self: the staging database resets every Sunday.") == [
        ("knowledge", "The staging database resets every Sunday.")
    ]


def test_a_flagged_fact_keeps_its_own_type() -> None:
    # "Heads-up" says "worth keeping"; what follows says what kind of memory it is.
    assert kinds("Heads-up: our API gateway is hosted in Frankfurt.")[0][0] == "project"
    assert kinds("Heads-up: the cache key ignores the query string.")[0][0] == "knowledge"


def test_an_instruction_after_a_complaint_is_an_adaptation() -> None:
    prompt = "You deleted my notes again. Ask before removing any file in the vault."
    assert kinds(prompt) == [("adaptation", "Ask before removing any file in the vault.")]
    assert extract("Ask before removing any file in the vault.") == []


def test_the_same_input_always_gives_the_same_output() -> None:
    prompt = (
        "I'm a nurse. We decided to move the rota to Mondays. Yesterday I met the new head nurse."
    )
    assert extract(prompt) == extract(prompt)


def test_sentences_keep_abbreviations_and_lowercase_chat() -> None:
    assert list(sentences("My advisor is Dr. Okafor. ok so we ship friday. e.g. like this")) == [
        "My advisor is Dr. Okafor.",
        "ok so we ship friday.",
        "e.g. like this",
    ]
    assert clauses("When I say London, I mean Heathrow") == ["When I say London, I mean Heathrow"]
