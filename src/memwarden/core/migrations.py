"""The schema's version, for an operator: where it is, its history, upgrade and downgrade.

These work on a database at any version (``Memwarden`` itself refuses one that is not at this
code's heads), so they open the store directly and never the ledger. A downgrade is planned
first (``plan_downgrade``: done and rolled back) so the caller can show what it would drop and
refuse to lose the ledger's rows unless forced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from memwarden.config import Settings
from memwarden.db import migrate
from memwarden.db.migrate import Change, DowngradePlan, names
from memwarden.db.store import Store

__all__ = ["Change", "DowngradePlan", "Revision", "SchemaStatus", "names"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the revisions it stands on, what it does, where the store is."""

    id: str
    parents: tuple[str, ...]
    summary: str
    head: bool
    applied: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "summary": self.summary,
            "head": self.head,
            "applied": self.applied,
        }


@dataclass(frozen=True)
class SchemaStatus:
    current: frozenset[str]
    heads: frozenset[str]

    @property
    def state(self) -> str:
        """``current``, ``empty`` (never initialised), ``older`` or ``newer`` than this code."""
        if self.current == self.heads:
            return "current"
        if not self.current:
            return "empty"
        if self.current - migrate.known_revisions():
            return "newer"
        return "older"

    @property
    def missing(self) -> list[str]:
        """Revisions this code has that the database has not applied."""
        applied = _applied_set(self.current)
        return [r.revision for r in migrate.revisions() if r.revision not in applied]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "current": sorted(self.current),
            "heads": sorted(self.heads),
            "missing": self.missing if self.state != "newer" else [],
        }


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    store = Store(settings)
    try:
        yield store
    finally:
        store.close()


def _applied_set(current: frozenset[str]) -> set[str]:
    known = migrate.known_revisions()
    applied: set[str] = set()
    by_id = {r.revision: r for r in migrate.revisions()}
    stack = [rev for rev in current if rev in known]
    while stack:
        rev = stack.pop()
        if rev in applied:
            continue
        applied.add(rev)
        parents = by_id[rev].down_revision
        if isinstance(parents, str):
            stack.append(parents)
        elif parents:
            stack.extend(parents)
    return applied


def status(settings: Settings) -> SchemaStatus:
    with _store(settings) as store:
        return SchemaStatus(migrate.current_revisions(store), migrate.head_revisions())


def history(settings: Settings) -> list[Revision]:
    """Every revision this code knows, oldest first, marked applied or not for this store."""
    with _store(settings) as store:
        applied = _applied_set(migrate.current_revisions(store))
    heads = migrate.head_revisions()
    found: list[Revision] = []
    for rev in migrate.revisions():
        down = rev.down_revision
        parents = (down,) if isinstance(down, str) else tuple(down or ())
        summary = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        found.append(
            Revision(rev.revision, parents, summary, rev.revision in heads, rev.revision in applied)
        )
    return found


def upgrade(settings: Settings, target: str = "heads") -> Change:
    with _store(settings) as store:
        change = migrate.upgrade(store, target)
    log.info("schema_upgrade", target=target, **change.to_dict())
    return change


def plan_downgrade(settings: Settings, target: str) -> DowngradePlan:
    with _store(settings) as store:
        return migrate.plan_downgrade(store, target)


def downgrade(settings: Settings, target: str) -> Change:
    with _store(settings) as store:
        change = migrate.downgrade(store, target)
    log.warning("schema_downgrade", target=target, **change.to_dict())
    return change
