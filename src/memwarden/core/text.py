"""Text normalisation shared by deduplication and recall."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Collection

WORD = re.compile(r"\w+", re.UNICODE)


def normalise(content: str) -> str:
    """The form two statements share when they say the same thing: case, width and spacing
    folded, trailing punctuation dropped."""
    folded = unicodedata.normalize("NFKC", content).casefold()
    # Runs of whitespace as one space, none at the ends: str.split() splits on exactly the
    # characters \s matches (both ask Py_UNICODE_ISSPACE), at a fraction of a substitution's
    # cost. What is left holds no whitespace but single spaces between words (so no newline
    # for a ``$`` to stop before): the trailing punctuation pattern (``[\s.!;,]+$``, which
    # searched at every space) removes exactly what this rstrip does.
    return " ".join(folded.split()).rstrip(" .!;,")


def content_hash(content: str) -> str:
    return hashlib.sha256(normalise(content).encode("utf-8")).hexdigest()


def words(query: str) -> list[str]:
    # lower(), not casefold(): the full-text indexes lower-case ('ß' stays 'ß'; casefold
    # would make it 'ss', a word no index holds).
    if query.isascii():  # NFKC leaves ASCII as it is, and lowering it first keeps every \w run
        return WORD.findall(query.lower())
    return [w.lower() for w in WORD.findall(unicodedata.normalize("NFKC", query))]


def held_by(wanted: Collection[str]) -> Callable[[str], set[str]]:
    """A function telling which of ``wanted`` are among ``words(text)``, for many texts.

    An ASCII text (nearly all) is scanned once for the wanted words alone, each a whole
    ``\\w+`` run, instead of being split into all of its words: recall weighs ~100
    candidates a query this way (``recall_fusion.text_scores``). Any other text is split as
    ``words`` splits it (NFKC and lower-casing may change its runs)."""
    terms = frozenset(wanted)
    ascii_terms = sorted((t for t in terms if t.isascii() and t), key=len, reverse=True)
    pattern = (
        re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ascii_terms)) + r")(?!\w)")
        if ascii_terms
        else None
    )

    def held(text: str) -> set[str]:
        if not text.isascii():
            return set(terms.intersection(words(text)))
        return set(pattern.findall(text.lower())) if pattern is not None else set()

    return held


# Words too common to say what a query is about. Recall drops them unless nothing else is left.
STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in
    into is it its me my of on or our shall should so than that the their them then there these
    they this those to was we were what when where which who whom why will with would you your
    about after all any been before being between both each few more most no nor not only other
    own same some such too very just over under again further once here s t don now""".split()
)


def content_terms(query: str) -> list[str]:
    """The query's words without stopwords (all of them when every word is a stopword)."""
    terms = list(dict.fromkeys(words(query)))
    meaningful = [t for t in terms if t not in STOPWORDS]
    return meaningful or terms
