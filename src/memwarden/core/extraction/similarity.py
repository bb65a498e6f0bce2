"""When a new statement restates a memory: token similarity with guards, and a fast index.

Two statements restate each other when their word sets overlap enough (Jaccard similarity at
or above a threshold, ``MEMWARDEN_REINFORCE_SIMILARITY``) and they agree on what a similarity
score cannot see: the same numbers ("Postgres 15" is not "Postgres 16") and the same polarity
("I like X" is not "I don't like X").

The index finds those pairs without comparing each new statement with every memory: with any
fixed order on words, two sets whose Jaccard similarity reaches ``t`` share a word among the
first ``n - ceil(t * n) + 1`` words of each (the prefix filter), so only memories sharing a
prefix word are compared.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from memwarden.core.text import content_hash, normalise, words

_NUMBER = re.compile(r"\d")
# "don't" and "isn't" tokenise to "don" + "t": the lone "t" marks the negation.
_NEGATION = frozenset({"not", "no", "never", "without", "nor", "cannot", "t", "none", "nothing"})


@dataclass(frozen=True)
class Tokens:
    words: frozenset[str]
    numbers: frozenset[str]
    negated: bool


def tokens(text: str) -> Tokens:
    found = frozenset(words(normalise(text)))
    return Tokens(
        words=found,
        numbers=frozenset(w for w in found if _NUMBER.search(w)),
        negated=bool(found & _NEGATION),
    )


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def restates(a: Tokens, b: Tokens, threshold: float) -> bool:
    if a.numbers != b.numbers or a.negated != b.negated:
        return False
    return jaccard(a.words, b.words) >= threshold


def similarity(a: str, b: str) -> float:
    return jaccard(tokens(a).words, tokens(b).words)


def _order(word: str) -> tuple[int, str]:
    # Longer words first: they are rarer, so prefixes stay selective.
    return (-len(word), word)


def _prefix(found: frozenset[str], threshold: float) -> list[str]:
    size = len(found)
    keep = size - math.ceil(threshold * size - 1e-9) + 1
    return sorted(found, key=_order)[: max(1, keep)]


class SimilarityIndex:
    """Live memories of one project, by type, searchable for restatements."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._tokens: dict[int, Tokens] = {}
        self._postings: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._exact: dict[tuple[str, str], int] = {}  # (type, content hash) -> memory id
        self._keys: dict[int, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, memory_id: int, type_: str, content: str) -> None:
        key = (type_, content_hash(content))
        self._exact[key] = memory_id
        self._keys[memory_id] = key
        found = tokens(content)
        if not found.words or memory_id in self._tokens:
            return
        self._tokens[memory_id] = found
        for word in _prefix(found.words, self.threshold):
            self._postings[(type_, word)].append(memory_id)

    def exact(self, type_: str, digest: str) -> int | None:
        """The memory of this type whose normalised text has this hash, if indexed."""
        return self._exact.get((type_, digest))

    def discard(self, memory_id: int) -> None:
        self._tokens.pop(memory_id, None)  # postings keep the id; lookups skip it
        key = self._keys.pop(memory_id, None)
        if key is not None and self._exact.get(key) == memory_id:
            del self._exact[key]

    def find(self, type_: str, content: str) -> list[int]:
        """Memories of this type that the content restates, most similar first."""
        query = tokens(content)
        if not query.words:
            return []
        seen: set[int] = set()
        scored: list[tuple[float, int]] = []
        for word in _prefix(query.words, self.threshold):
            for memory_id in self._postings.get((type_, word), ()):
                if memory_id in seen:
                    continue
                seen.add(memory_id)
                other = self._tokens.get(memory_id)
                if other is not None and restates(query, other, self.threshold):
                    scored.append((jaccard(query.words, other.words), memory_id))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [memory_id for _, memory_id in scored]
