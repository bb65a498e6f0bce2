"""Splitting a text or Markdown document into chunks at headings and paragraphs."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Chunk:
    heading: str
    content: str


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) in document order; text before the first heading has none."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    paragraph: list[str] = []
    in_fence = False

    def close_paragraph() -> None:
        if paragraph:
            sections[-1][1].append("\n".join(paragraph).strip())
            paragraph.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            close_paragraph()
            sections.append((match.group(2), []))
        elif not line.strip() and not in_fence:
            close_paragraph()
        else:
            paragraph.append(line)
    close_paragraph()
    return [(heading, paras) for heading, paras in sections if paras]


def _split_long(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > limit:  # a single run-on sentence: cut it hard
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces


def chunk_text(text: str, target: int = 1200) -> list[Chunk]:
    """Paragraphs are packed up to ``target`` characters; a chunk never spans two headings."""
    limit = max(200, int(target * 1.5))
    chunks: list[Chunk] = []
    for heading, paragraphs in _sections(text):
        current: list[str] = []
        size = 0
        for paragraph in paragraphs:
            for piece in _split_long(paragraph, limit):
                if current and size + len(piece) > target:
                    chunks.append(Chunk(heading, "\n\n".join(current)))
                    current, size = [], 0
                current.append(piece)
                size += len(piece) + 2
        if current:
            chunks.append(Chunk(heading, "\n\n".join(current)))
    return chunks
