"""Trust applied to recall, on top of whatever ranks the hits.

Three small steps, each independent of the ranking (so a different ranker can be put under
them): ``annotate`` gives every hit its source and tier and neutralises hidden characters,
``at_least`` drops hits below a minimum tier, and ``cap_per_source`` keeps one source from
filling more than a share of the top results (a key that stuffed many near-identical memories
pushes out nobody else's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, select

from memwarden.core import provenance, screening
from memwarden.db import schema
from memwarden.db.lists import in_list

# Document passages were written by nobody we know: not verified, at best found text.
CHUNK_TIER = provenance.EXTRACTED


class Annotated(Protocol):
    """A ranked hit (a frozen dataclass) with room for its tier and source."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def content(self) -> str: ...
    @property
    def provenance(self) -> dict[str, Any]: ...
    @property
    def tier(self) -> str | None: ...
    @property
    def source(self) -> dict[str, Any] | None: ...


H = TypeVar("H", bound=Annotated)


def provenance_of(row: Any) -> dict[str, Any]:
    """A memory row's source, tier and flags, as ``annotate`` adds them to a hit."""
    return {
        "tier": row.tier or provenance.AGENT_TIER,
        "source": {"kind": row.source_kind, "actor": row.source_actor, "key": row.source_key},
        "flags": json.loads(row.flags) if row.flags else [],
    }


def annotate(conn: Connection, hits: Sequence[H]) -> list[H]:
    """Each hit with its ``tier`` and ``source`` (in its provenance too), content neutralised.
    A ranker that read them with the row (``provenance_of``) saves the query."""
    ids = [hit.id for hit in hits if hit.kind == "memory" and "tier" not in hit.provenance]
    rows: dict[int, Any] = {}
    if ids:
        m = schema.memories
        query = select(
            m.c.id, m.c.source_kind, m.c.source_actor, m.c.source_key, m.c.tier, m.c.flags
        ).where(in_list(conn, m.c.id, ids))
        rows = {int(row.id): row for row in conn.execute(query)}
    out: list[H] = []
    for hit in hits:
        if hit.kind == "memory" and "tier" in hit.provenance:
            source, tier = hit.provenance["source"], hit.provenance["tier"]
            flags = hit.provenance["flags"]
        elif hit.kind == "memory" and hit.id in rows:
            known = provenance_of(rows[hit.id])
            source, tier, flags = known["source"], known["tier"], known["flags"]
        else:
            source = {"kind": provenance.IMPORT, "document": hit.provenance.get("document")}
            flags = screening.screen(hit.content)
            tier = provenance.FLAGGED if flags else CHUNK_TIER
        extra = {"tier": tier, "source": source, "flags": flags}
        out.append(
            replace(  # type: ignore[type-var]
                hit,
                content=screening.neutralise(hit.content),
                provenance={**hit.provenance, **extra},
                tier=tier,
                source=source,
            )
        )
    return out


def at_least(hits: Sequence[H], min_tier: str | None) -> list[H]:
    if min_tier is None:
        return list(hits)
    floor = provenance.rank(provenance.check_tier(min_tier))
    return [hit for hit in hits if provenance.rank(hit.tier) >= floor]


def source_of(hit: Annotated) -> str | None:
    """Who a hit comes from, for the cap; None when nobody is known (rows from before
    provenance, loaded in bulk): those are not capped."""
    source = hit.source or {}
    if hit.kind != "memory":
        return f"document:{source.get('document')}"
    if not source.get("kind") and not source.get("actor"):
        return None
    return provenance.identity_of(source.get("kind"), source.get("actor"), source.get("key"))


def cap_per_source(
    hits: Sequence[H], k: int, share: float, key: Callable[[Annotated], str | None] = source_of
) -> list[H]:
    return _capped(hits, k, share, key)[0]


def short_of_others(
    hits: Sequence[H], k: int, share: float, key: Callable[[Annotated], str | None] = source_of
) -> bool:
    """Whether over-cap hits had to fill the top ``k``: a deeper ranking may find others."""
    return _capped(hits, k, share, key)[1]


def _capped(
    hits: Sequence[H], k: int, share: float, key: Callable[[Annotated], str | None]
) -> tuple[list[H], bool]:
    """The top ``k`` with at most ``ceil(share * k)`` (at least 2) from any one source; hits
    over a source's cap come after everyone else's, so they fill only what nobody else can.
    Verified memories (a person wrote or approved each one) are not capped."""
    cap = max(2, math.ceil(share * k))
    kept: list[H] = []
    overflow: list[H] = []
    counts: dict[str, int] = {}
    for hit in hits:
        name = key(hit)
        if hit.tier == provenance.VERIFIED or name is None:
            kept.append(hit)
        elif counts.get(name, 0) < cap:
            counts[name] = counts.get(name, 0) + 1
            kept.append(hit)
        else:
            overflow.append(hit)
    return (kept + overflow)[:k], len(kept) < k and bool(overflow)
