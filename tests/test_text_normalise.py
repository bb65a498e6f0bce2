"""``normalise`` folds whitespace with str.split() and drops trailing punctuation with
rstrip: the same text as the regular expressions they replaced, for every whitespace
character Python knows."""

from __future__ import annotations

import random
import re
import sys
import unicodedata

from memwarden.core.text import WORD, content_hash, held_by, normalise, words

_SPACE = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s.!;,]+$")


def _by_regex(content: str) -> str:
    folded = unicodedata.normalize("NFKC", content).casefold()
    folded = _SPACE.sub(" ", folded).strip()
    return _TRAILING_PUNCTUATION.sub("", folded)


WHITESPACE = [chr(code) for code in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(code))]


def test_split_and_the_pattern_agree_on_what_whitespace_is() -> None:
    assert WHITESPACE == [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    for char in WHITESPACE:
        assert f"a{char}b".split() == ["a", "b"]


def test_normalise_equals_the_regex_folding() -> None:
    rng = random.Random(21)
    alphabet = [*WHITESPACE, *"abcXYZ .!;,", "ß", "İ", "\u00a0", "\u200b", "\ufeff", "ﬁ", "..."]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert normalise(text) == _by_regex(text), repr(text)


def test_a_known_hash_is_unchanged() -> None:
    # Stored content hashes decide duplicates: the folding must not move any of them.
    text = "  The launch\u00a0window\t opens\n in MARCH!! "
    assert normalise(text) == "the launch window opens in march"
    assert content_hash(text) == content_hash("the launch window opens in march")


def test_words_of_ascii_text_equal_the_unicode_path() -> None:
    """``words`` lowers ASCII text whole before splitting it: the same words as normalising and
    lowering each one, for every ASCII character."""
    rng = random.Random(17)
    alphabet = [chr(code) for code in range(128)]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        expected = [w.lower() for w in WORD.findall(unicodedata.normalize("NFKC", text))]
        assert words(text) == expected, repr(text)
    assert words("Straße İstanbul ﬁle") == ["straße", "i̇stanbul", "file"]


def test_held_by_finds_exactly_the_wanted_words_that_words_finds() -> None:
    """``held_by`` (a scan for the wanted words alone) against splitting every word: the same
    answer on ASCII texts, text with other characters, prefixes, suffixes, underscores and
    digits, and words wanted that are not ASCII."""
    rng = random.Random(21)
    alphabet = "abcAB_1 .,-'\n\té" + "ﬁİß"  # a ligature, a dotted capital, a sharp s
    vocabulary = ["ab", "abc", "b", "a_b", "1", "é", "fi", "ss", "ß", "i̇", "x"]
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        wanted = rng.sample(vocabulary, rng.randint(0, 5))
        assert held_by(wanted)(text) == set(wanted).intersection(words(text)), (text, wanted)
        checked += bool(set(wanted).intersection(words(text)))
    assert checked > 300  # the comparison found words, not only empty sets
    held = held_by(["ab", "abc"])
    assert held("ABC abd ab_ xab ab.") == {"abc", "ab"}
    assert held("abd ab_ xab") == set()
