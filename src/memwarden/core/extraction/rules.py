"""The default extractor: cue patterns over the clauses of an exchange. Deterministic, offline.

The user's prompt is read for every kind of memory; the assistant's response for explicit
lessons and root causes, team decisions it states and facts it flags to remember (what an
assistant prefers or plans is not the user's memory). Each candidate records its side. A clause
that asks, wishes or supposes is skipped; hedging lowers the confidence, emphasis raises it.
"""

from __future__ import annotations

from memwarden.core.capture import Interaction
from memwarden.core.extraction import filters, patterns
from memwarden.core.extraction.base import Candidate
from memwarden.core.extraction.sentences import clauses, sentences
from memwarden.core.text import normalise

NAME = "rules"
VERSION = "1.3"
MIN_CONFIDENCE = 0.45
MIN_WORDS = 2
RESPONSE_PENALTY = 0.1
HEDGE_PENALTY = 0.2
EMPHASIS_BONUS = 0.05


class RuleExtractor:
    """Proposes candidates from cue patterns; the same input always gives the same output."""

    name = NAME
    version = VERSION

    def extract(self, interaction: Interaction) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for side, text in (("user", interaction.prompt), ("assistant", interaction.response)):
            for candidate in self._side(interaction.id, side, text):
                key = f"{candidate.type}\x00{normalise(candidate.content)}"
                kept = found.get(key)
                if kept is None or candidate.confidence > kept.confidence:
                    found[key] = candidate
        return list(found.values())

    def close(self) -> None:
        return None

    def _side(self, interaction_id: int, side: str, text: str) -> list[Candidate]:
        out = []
        corrected = False  # the user complained about what the agent did
        for sentence in sentences(text):
            for clause in clauses(sentence):
                candidate = judge(interaction_id, side, clause, after_complaint=corrected)
                if candidate is not None:
                    out.append(candidate)
            corrected = corrected or (side == "user" and bool(filters.COMPLAINT.search(sentence)))
        return out


def _first_cue(side: str, clause: str, *, relabel: bool = True) -> patterns.Cue | None:
    for cue in patterns.CUES:
        if cue.sides != "any" and cue.sides != side:
            continue
        if cue.relabel and not relabel:
            continue
        if cue.durable and filters.TRANSIENT.search(clause):
            continue
        if cue.pattern.search(clause):
            return cue
    return None


def judge(
    interaction_id: int, side: str, clause: str, *, after_complaint: bool = False
) -> Candidate | None:
    """The candidate one clause states, or None."""
    if filters.QUESTION.search(clause) or filters.SUPPOSITION.search(clause):
        return None
    content = clean(clause)
    cue = _first_cue(side, clause)
    type_ = cue.type if cue is not None else ""
    if cue is not None and cue.relabel:
        # "Heads-up: the ETL must finish by six" is a project fact flagged as worth keeping;
        # what the assistant flags is typed as if the user had said it.
        inner = _first_cue("user", content, relabel=False)
        if inner is not None:
            type_ = inner.type
    elif cue is None and after_complaint and filters.IMPERATIVE.match(clause):
        cue, type_ = patterns.CORRECTION, patterns.CORRECTION.type
    if cue is None or len(content.split()) < MIN_WORDS:
        return None
    confidence = cue.confidence
    if side != "user":
        confidence -= RESPONSE_PENALTY
    if filters.hedged(clause):
        confidence -= HEDGE_PENALTY
    elif filters.emphatic(clause):
        confidence += EMPHASIS_BONUS
    confidence = round(min(0.95, max(0.0, confidence)), 2)
    if confidence < MIN_CONFIDENCE:
        return None
    return Candidate(type_, content, confidence, interaction_id, cue.name, side)


def clean(clause: str) -> str:
    """The clause as a statement: leading fillers and labels dropped, capitalised, one stop."""
    text = clause.strip()
    while True:
        stripped = filters.LABEL.sub("", text, count=1).strip()
        if stripped == text or not stripped:
            break
        text = stripped
    text = text.rstrip(" ,;:-–—")
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?)\"'":
        text += "."
    return text
