"""What every extractor shares: the candidate it proposes and the contract it keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from memwarden.core.capture import Interaction


@dataclass(frozen=True)
class Candidate:
    """A statement an extractor found in one interaction, not yet stored."""

    type: str
    content: str
    confidence: float
    interaction_id: int
    cue: str = ""  # what made the extractor propose it (a pattern name, "llm")
    # Which side of the exchange stated it: "user" (the prompt), "assistant" (the response),
    # or None when the extractor cannot tell (an LLM reads both at once).
    side: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "content": self.content,
            "confidence": self.confidence,
            "interaction_id": self.interaction_id,
            "cue": self.cue,
            "side": self.side,
        }


class ExtractionFailure(Exception):
    """One interaction could not be extracted; it is counted, logged and skipped.

    ``kind`` names the failure (``timeout``, ``http_error``, ``invalid_json``, ``invalid_schema``,
    ...). A ``fatal`` failure (the endpoint is unreachable) stops the run instead, leaving the
    watermark before the interaction so the next run retries it."""

    def __init__(self, kind: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.fatal = fatal


class Extractor(Protocol):
    name: str
    version: str

    def extract(self, interaction: Interaction) -> list[Candidate]:
        """Candidates found in one interaction; raises ExtractionFailure when it cannot tell."""
        ...

    def close(self) -> None: ...
