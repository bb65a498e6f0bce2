"""``screen`` skips a pattern when an ASCII text lacks a word the pattern needs: it must give
exactly what running every pattern gives, on attacks, honest text and random mixes."""

from __future__ import annotations

import random
import re

from benign_corpus import corpus
from memwarden.core import screening
from memwarden.core.screening import screen
from test_screening import ATTACKS


def every_pattern(text: str) -> list[str]:
    """``screen`` as it was before the pre-checks: every pattern searched."""
    s = screening
    reasons: list[str] = []
    if s._TAGS.search(text):
        reasons.append("unicode tag characters (invisible text)")
    if s._BIDI.search(text):
        reasons.append("bidirectional control characters")
    if re.search("[\u200b\u200c\u200d\u2060-\u2064\ufeff\u180e]", text.lstrip("\ufeff")):
        reasons.append("zero-width characters")
    if s._INSTRUCTION.search(text):
        reasons.append("an instruction aimed at the reading agent")
    if s._ROLE_MARKER.search(text):
        reasons.append("role or system-prompt markers")
    if s._TOOL_CALL.search(text):
        reasons.append("tool-call syntax")
    if s._HTML_COMMENT.search(text):
        reasons.append("an HTML comment (hidden text)")
    if s._invisible_markdown(text):
        reasons.append("invisible markdown")
    if any(len(set(run.group(0))) >= s._BLOB_VARIETY for run in s._BLOB.finditer(text)):
        reasons.append("a large encoded blob")
    return reasons


def test_the_same_on_attacks_and_the_benign_corpus() -> None:
    texts = [*ATTACKS.values(), *corpus()]
    for text in texts:
        assert screen(text) == every_pattern(text), text[:200]
    assert all(screen(text) for text in ATTACKS.values())


def _recased(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.3 else c for c in text)


def test_the_same_on_random_mixes_of_the_words_the_patterns_need() -> None:
    rng = random.Random(21)
    # Pieces of every attack and every word the pre-checks look for, among honest words and
    # the characters whose case folding is not ASCII's ('İ', 'ı', 'ſ', the Kelvin sign).
    pieces = [
        *(word for text in ATTACKS.values() for word in re.split(r"(\s+)", text)),
        *"ignore disregard forget override bypass previous all the these system you are now "
        "must will should new updated real actual instructions instruction prompt rules "
        "context messages do not tell inform reveal to user when if an a ai assistant agent "
        "model llm reads read sees recalls retrieves this these prompt span div p".split(),
        # Whole phrases of each branch of the instruction pattern, and near misses.
        "ignore all previous instructions",
        "disregard the above rules",
        "forget your prompt",
        "you are now",
        "you should now",
        "new instructions:",
        "real system instruction :",
        "do not tell the user",
        "do not reveal to the user",
        "when an AI reads this",
        "if the model sees these",
        "when an assistant recalls these",
        # And of the invisible markdown: a comment line, an empty image, a hidden span.
        "[note]: # (hidden)",
        "![x]()",
        '<span style="display:none">',
        "<div style='font-size:0'>",
        "[link](https://example.org)",
        " ",
        " ",
        "\n",
        ".",
        ":",
        "<",
        ">",
        "[",
        "]",
        "<|",
        "|>",
        "#",
        "(",
        ")",
        '"',
        "!",
        "\u0130",
        "\u0131",
        "\u017f",
        "\u212a",
        "\u00e9",
        "\u200b",
        "\u202e",
    ]
    flagged: dict[str, int] = {}
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        text = _recased(rng, text)
        found = every_pattern(text)
        assert screen(text) == found, repr(text)
        if text.isascii():
            for reason in found:
                flagged[reason] = flagged.get(reason, 0) + 1
    # The mixes reach the patterns the pre-checks guard, on ASCII texts (else this proves
    # nothing about the pre-checks).
    for reason in (
        "an instruction aimed at the reading agent",
        "role or system-prompt markers",
        "invisible markdown",
    ):
        assert flagged.get(reason, 0) >= 20, (reason, flagged)
