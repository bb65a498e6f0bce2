"""Screening reads a text in time linear in its length, whatever the text: two of its patterns
backtracked quadratically (64 KiB of ``<p `` took ~20 s, of blank lines after "system:" ~50 s),
holding a server's interpreter lock through a write, and through a recall that screened such a
chunk (found by an attack session). Each rewritten pattern finds exactly what the old one
found (checked against the old expressions, kept here, on small random texts)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memwarden.core import screening
from memwarden.core.screening import screen

OLD_INVISIBLE_MARKDOWN = re.compile(
    r"^\s*\[[^\]]*\]:\s*(?:#|<>)\s*(?:\(|\")"
    r"|!\[[^\]]*\]\(\s*\)"
    r"|<(?:span|div|p)\b[^>]*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0)",
    re.IGNORECASE | re.MULTILINE,
)
OLD_ROLE_LINE = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:system|assistant)\s*(?:prompt)?\s*:\s*\S", re.IGNORECASE | re.MULTILINE
)
NEW_ROLE_LINE = re.compile(
    r"^[^\S\n]*(?:#{1,6}\s*)?(?:system|assistant)(?:\s*prompt)?\s*:\s*\S",
    re.IGNORECASE | re.MULTILINE,
)
PIECES = [
    "[", "]", "!", "(", ")", ":", "#", "<>", '"', " ", "\n", "\t", "\r", "x", "<p", "<span",
    "<div", ">", "display:none", "visibility: hidden", "font-size:0", "system", "assistant",
    "prompt", "## ", "DISPLAY : NONE", "<P ", "]:", "![",
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_invisible_markdown_finds_what_the_old_expression_found(text: str) -> None:
    assert screening._invisible_markdown(text) == bool(OLD_INVISIBLE_MARKDOWN.search(text))


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_the_role_line_finds_what_the_old_expression_found(text: str) -> None:
    assert bool(NEW_ROLE_LINE.search(text)) == bool(OLD_ROLE_LINE.search(text))
    assert NEW_ROLE_LINE.pattern in screening._ROLE_MARKER.pattern


MIB = 1024 * 1024
HOSTILE = {
    "tag openings": "<p " * (MIB // 3),
    "span openings": "<span " * (MIB // 6),
    "image openings": "![" * (MIB // 2),
    "reference openings": "\n[" * (MIB // 2),
    "blank lines after a role word": "system: " + " \n" * (MIB // 2),
    "blanks after a role word": "system" + " " * MIB + "x",
    "comment openings": "<!--" * (MIB // 4),
    "tool-call openings": '{"name":"' * (MIB // 9),
}


@pytest.mark.timeout(60)  # each took hours before (quadratic); milliseconds now
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_mebibyte_of_hostile_text_is_screened_without_stalling(name: str) -> None:
    assert isinstance(screen(HOSTILE[name]), list)
