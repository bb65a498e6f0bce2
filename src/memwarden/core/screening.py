"""Screening on the way in, and neutralising on the way out.

``screen(text)`` names what in a text looks aimed at the agent that will read it rather than
at the person who keeps it: an instruction to the reader ("ignore previous instructions"),
role or system-prompt markers, tool-call syntax, hidden text (zero-width and bidi control
characters, Unicode tag characters, HTML comments, invisible markdown), and large encoded
blobs. A memory with any reason is stored as a ``flagged`` candidate and never promoted
automatically. The patterns are deliberately narrow: ordinary technical prose, code and
commands must pass (the benign corpus in tests/test_screening.py measures the rate).

``neutralise(text)`` removes the invisible characters from whatever recall serves, whatever
its tier.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and joiner characters, the bidi controls, the word joiner and invisible
# operators, the BOM used mid-text, and the Unicode tag block (U+E0000-U+E007F).
_HIDDEN_CHARS = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff\u00ad\u180e"
)
_HIDDEN = re.compile(f"[{_HIDDEN_CHARS}\U000e0000-\U000e007f]")
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")

_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?"
    r"\b(?:previous|prior|above|earlier|all|any|your|the|these|system)\b[^.\n]{0,30}?"
    r"\b(?:instructions?|prompts?|rules|guidelines|directives|context|messages?)\b"
    r"|\byou\s+(?:are\s+now|must\s+now|will\s+now|should\s+now)\b"
    r"|\b(?:new|updated|real|actual)\s+(?:system\s+)?instructions?\s*:"
    r"|\bdo\s+not\s+(?:tell|inform|reveal\s+to)\s+the\s+user\b"
    r"|\b(?:when|if)\s+(?:an?\s+)?(?:ai|assistant|agent|model|llm)\b[^.\n]{0,40}"
    r"\b(?:reads?|sees?|recalls?|retrieves?)\s+(?:this|these)\b",
    re.IGNORECASE,
)
# Words that every match of a branch of ``_INSTRUCTION`` contains (``_may_instruct``).
_INSTRUCTION_VERBS = ("ignore", "disregard", "forget", "override", "bypass")
_READING_VERBS = ("read", "see", "recall", "retrieve")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060-\u2064\ufeff\u180e]")
_ROLE_MARKER = re.compile(
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>"
    r"|\[/?(?:INST|SYS)\]|<</?SYS>>"
    # From a line's start, blanks within the line (``^\s*`` ran on through every following
    # blank line, from each line start: quadratic in blank lines, 64 KiB took ~50 s), and
    # one run of blanks before the colon: ``\s*(?:prompt)?\s*`` split a run between
    # the two and tried every split (quadratic in a run of blanks after the word).
    r"|^[^\S\n]*(?:#{1,6}\s*)?(?:system|assistant)(?:\s*prompt)?\s*:\s*\S"
    r"|</?(?:system|system-prompt|instructions?)>",
    re.IGNORECASE | re.MULTILINE,
)
_TOOL_CALL = re.compile(
    r"<(?:tool_call|function_call|function_calls|invoke|tool_use|antml:\w+)\b"
    r"|\"(?:tool_calls?|function_call)\"\s*:"
    r"|\{\s*\"name\"\s*:\s*\"[^\"]+\"\s*,\s*\"(?:arguments|parameters)\"\s*:",
    re.IGNORECASE,
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# Invisible markdown (``_invisible_markdown``): a reference definition that hides its text
# (``[comment]: # (hidden)``), an image without a source, a span/div/p styled invisible.
_REFERENCE_OPEN = re.compile(r"^[^\S\n]*\[", re.MULTILINE)
_REFERENCE_HIDDEN = re.compile(r":\s*(?:#|<>)\s*(?:\(|\")")
_EMPTY_SOURCE = re.compile(r"\(\s*\)")
_STYLED_TAG = re.compile(r"<(?:span|div|p)\b", re.IGNORECASE)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0", re.IGNORECASE
)
# 200+ characters of base64 or 160+ hex digits in one run: a payload, not prose or a hash.
_BLOB = re.compile(r"(?:[A-Za-z0-9+/]{200,}={0,2})|(?:\b[0-9a-fA-F]{160,}\b)")
_BLOB_VARIETY = 16  # a run of one repeated letter is padding, not an encoding


def _invisible_markdown(text: str) -> bool:
    """Each form is an opening, then anything but its closing mark, the mark, and a tail. One
    regular expression for all three backtracked from every opening to the end of a text
    without closing marks: 64 KiB of ``<p `` took ~20 s of a server's interpreter lock. Here
    the text is cut at each closing mark and each piece is searched once, from its first
    opening, which finds what the expression found (a later opening in the same piece sees
    less of it)."""
    start = 0
    while (close := text.find("]", start)) != -1:
        tail = close + 1
        if _REFERENCE_OPEN.search(text, start, close) and _REFERENCE_HIDDEN.match(text, tail):
            return True
        if text.find("![", start, close) != -1 and _EMPTY_SOURCE.match(text, tail):
            return True
        start = tail
    start = 0
    while start <= len(text):
        close = text.find(">", start)
        end = len(text) if close == -1 else close
        tag = _STYLED_TAG.search(text, start, end)
        if tag is not None and _HIDDEN_STYLE.search(text, tag.end(), end):
            return True
        start = end + 1
    return False


def screen(text: str) -> list[str]:
    """The reasons this text would mislead a reading agent; empty when it is clean."""
    reasons: list[str] = []
    # Most memories are ASCII. Such a text cannot hold the invisible characters, and each
    # costly pattern needs a word or a mark it must then contain: looked for first (``in``
    # is a fraction of a regular expression's search, every create screens its text), their
    # absence rules the pattern out. Exact: under IGNORECASE an ASCII character matches only
    # itself and its other case, so an ASCII text without the word cannot match.
    plain = text.isascii()
    lowered = text.lower() if plain else ""
    if not plain:
        if _TAGS.search(text):
            reasons.append("unicode tag characters (invisible text)")
        if _BIDI.search(text):
            reasons.append("bidirectional control characters")
        if _ZERO_WIDTH.search(text.lstrip("\ufeff")):
            reasons.append("zero-width characters")
    if (not plain or _may_instruct(lowered)) and _INSTRUCTION.search(text):
        reasons.append("an instruction aimed at the reading agent")
    if (not plain or _may_mark_role(text, lowered)) and _ROLE_MARKER.search(text):
        reasons.append("role or system-prompt markers")
    if _TOOL_CALL.search(text):
        reasons.append("tool-call syntax")
    if _HTML_COMMENT.search(text):
        reasons.append("an HTML comment (hidden text)")
    if (not plain or "[" in text or "<" in text) and _invisible_markdown(text):
        reasons.append("invisible markdown")
    if any(len(set(run.group(0))) >= _BLOB_VARIETY for run in _BLOB.finditer(text)):
        reasons.append("a large encoded blob")
    return reasons


def _may_instruct(lowered: str) -> bool:
    """Whether the lower-cased ASCII text holds a word each branch of ``_INSTRUCTION`` needs."""
    return (
        any(word in lowered for word in _INSTRUCTION_VERBS)
        or ("you" in lowered and "now" in lowered)
        or "instruction" in lowered
        or "user" in lowered
        or (
            ("this" in lowered or "these" in lowered)
            and any(word in lowered for word in _READING_VERBS)
        )
    )


def _may_mark_role(text: str, lowered: str) -> bool:
    """Whether the ASCII text holds a mark or word each branch of ``_ROLE_MARKER`` needs."""
    return "<" in text or "[" in text or "system" in lowered or "assistant" in lowered


def neutralise(text: str) -> str:
    """The text without invisible characters, and with HTML comments made visible."""
    cleaned = _HIDDEN.sub("", text)
    cleaned = _HTML_COMMENT.sub(lambda m: m.group(0).replace("<!--", "[hidden comment: "), cleaned)
    if cleaned.isascii():  # no ASCII character is a format character (Cf): nothing to drop
        return cleaned
    # Other format characters (category Cf) are invisible too: drop them.
    return "".join(ch for ch in cleaned if unicodedata.category(ch) != "Cf" or ch in "\n\t")
