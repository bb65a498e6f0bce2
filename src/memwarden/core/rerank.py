"""Ranking by recency or importance, when a recall asks (``rank_by``); relevance by default.

A stage after the fusion (core/recall_rank.py's ``rank`` is untouched): each hit's fused relevance
score ``r`` (in [0, 1]) is blended with a signal ``s`` in [0, 1] as
``(1 − w) · r + w · s`` with ``w`` = ``BLEND`` (0.5), and the hits re-sorted:

- ``recency``: ``s = 0.5 ** (age / half-life)``, the age counted from the memory's
  ``updated_at`` (a reinforcement updates it too), the half-life ``RECENCY_HALF_LIFE_DAYS``
  (30 days) unless the caller gives one;
- ``importance``: the memory's metadata key ``importance`` when it is a number (read on a 0–1
  scale, clamped), else its confidence, plus ``0.05`` per reinforcement, capped at 1.

Document chunks have neither, so their signal is a neutral 0.5. Recall ranks ``OVERFETCH``
times wider when a signal is asked for, so an old-but-relevant hit can make way for a newer
one from below the first ``k``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from memwarden.errors import InvalidInputError

RANK_BY = ("relevance", "recency", "importance")
BLEND = 0.5
RECENCY_HALF_LIFE_DAYS = 30.0
REINFORCEMENT_BONUS = 0.05
NEUTRAL = 0.5


def check(rank_by: str | None) -> str:
    rank_by = rank_by or "relevance"
    if rank_by not in RANK_BY:
        raise InvalidInputError(f"rank_by must be one of {', '.join(RANK_BY)}, not {rank_by!r}")
    return rank_by


class _Hit(Protocol):  # recall's Hit (a frozen dataclass, so read-only here)
    @property
    def kind(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def provenance(self) -> dict[str, Any]: ...


H = TypeVar("H", bound=_Hit)


def check_half_life(days: float | None) -> float:
    if days is None:
        return RECENCY_HALF_LIFE_DAYS
    if not 0.01 <= days <= 36500:
        raise InvalidInputError("the half-life must be between 0.01 and 36500 days")
    return float(days)


def rerank(hits: list[H], rank_by: str, half_life: float) -> list[H]:
    """Each hit's score blended with the asked signal (not re-sorted: the caller sorts);
    relevance leaves the hits as they are."""
    if rank_by == "relevance":
        return hits
    now = datetime.now(UTC)
    return [
        replace(  # type: ignore[type-var]
            h, score=blended(h.score, signal(h.kind, h.provenance, rank_by, now, half_life))
        )
        for h in hits
    ]


def recency(updated_at: str | None, now: datetime, half_life_days: float) -> float:
    if not updated_at:
        return NEUTRAL
    age = (now - datetime.fromisoformat(updated_at)).total_seconds() / 86400.0
    return float(0.5 ** (max(age, 0.0) / half_life_days))


def importance(provenance: dict[str, Any]) -> float:
    meta = provenance.get("metadata") or {}
    given = meta.get("importance") if isinstance(meta, dict) else None
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        base = float(given)
    else:
        base = float(provenance.get("confidence") or 0.0)
    bonus = REINFORCEMENT_BONUS * int(provenance.get("reinforcement_count") or 0)
    return min(1.0, max(0.0, base) + bonus)


def signal(
    kind: str, provenance: dict[str, Any], rank_by: str, now: datetime, half_life: float
) -> float:
    if kind != "memory":
        return NEUTRAL
    if rank_by == "recency":
        return recency(provenance.get("updated_at"), now, half_life)
    return importance(provenance)


def blended(score: float, value: float) -> float:
    return (1.0 - BLEND) * score + BLEND * value


def parse_metadata(text: str | None) -> dict[str, Any]:
    """A row's stored metadata text as an object for a hit ({} when none or unreadable)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
