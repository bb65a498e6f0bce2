"""Cutting an exchange into clauses a cue pattern can judge one at a time.

Code blocks, stack traces and other machine text are dropped; prose is split into sentences
and, where a new first-person statement starts inside a sentence ("I live in Lyon and I take
the train"), into clauses. Everything here is deterministic and network-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•>]|\d{1,3}[.)])\s+")
_MACHINE_LINE = re.compile(
    r"^(?:\s{4}|\t|traceback \(|file \"|\$ |>>> |#!|//|[\w.]+(?:error|exception|warning):)",
    re.IGNORECASE,
)
_SYMBOLS = frozenset("{}[]()<>=;|\\/`$#@^~*_")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# Abbreviations a sentence does not end on ("Dr. Okafor", "e.g. Postgres").
_ABBREVIATION = re.compile(
    r"(?:\b(?:dr|mr|mrs|ms|prof|mt|jr|sr|vs|approx|inc|ltd|fig|eq|vol)"
    r"|\be\.g|\bi\.e|\b[A-Z])\.$",
    re.IGNORECASE,
)
# A new first-person statement inside a sentence: "..., and I ...", "... but we ...", ", my ...".
_CLAUSE_BREAK = re.compile(
    r"(?i:(?:,\s*|\s+)(?:and|but)\s+(?=(?:i|i'm|i've|i'd|we|we're|we've|my|our)\b))"
    r"|,\s+(?=(?:I|I'm|I've|I'd|we|we're|we've|my|our)\b)"
    r"|,\s+so\s+"
    r"|,\s+(?=please\b)",
)
_SUBORDINATE = re.compile(
    r"^(?:when|whenever|if|unless|since|because|although|though|as|after|before|once|while"
    r"|for|in|on|at|by|during|with)\b",
    re.IGNORECASE,
)
MAX_CLAUSE_CHARS = 400


def _is_machine(line: str) -> bool:
    if _MACHINE_LINE.match(line):
        return True
    stripped = line.strip()
    if not stripped:
        return True
    symbols = sum(1 for ch in stripped if ch in _SYMBOLS)
    return symbols / len(stripped) > 0.2


def sentences(text: str) -> Iterator[str]:
    """Prose sentences of a text, without code blocks and machine-looking lines."""
    text = _FENCE.sub("\n", text)
    for raw in text.splitlines():
        if _is_machine(raw):
            continue
        line = _BULLET.sub("", raw).strip()
        pending = ""
        for piece in _SENTENCE_END.split(line):
            pending = f"{pending} {piece}" if pending else piece
            if _ABBREVIATION.search(pending):
                continue
            if pending.strip():
                yield pending.strip()
            pending = ""
        if pending.strip():
            yield pending.strip()


def clauses(sentence: str) -> list[str]:
    """A sentence cut where a new statement starts (never inside a when/if construction)."""
    if _SUBORDINATE.match(sentence):
        return [sentence]
    parts: list[str] = []
    start = 0
    for match in _CLAUSE_BREAK.finditer(sentence):
        parts.append(sentence[start : match.start()])
        start = match.end()
    parts.append(sentence[start:])
    return [p.strip() for p in parts if p.strip() and len(p) <= MAX_CLAUSE_CHARS]
