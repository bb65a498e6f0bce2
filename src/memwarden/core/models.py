"""Plain records the domain returns, and their snapshots for the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from memwarden.audit.entries import state_entity_id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


@dataclass(frozen=True)
class Memory:
    id: int
    project: str
    type: str
    content: str
    content_hash: str
    confidence: float
    status: str
    source_chunk_id: int | None
    reinforcement_count: int
    superseded_by: int | None
    created_at: datetime
    updated_at: datetime
    last_reinforced_at: datetime | None
    # Provenance and trust (core/provenance.py): plain columns, not in the ledger's snapshot.
    source_kind: str | None = None
    source_actor: str | None = None
    source_key: str | None = None
    tier: str | None = None
    flags: str | None = None  # JSON list of screening reasons
    independent_reinforcements: int = 0
    proposes: int | None = None
    # The metadata object as its stored canonical JSON text (core/metadata.py), None when the
    # memory has none; ``meta`` gives the object. In the ledger snapshot (as an object, and
    # only when present, so snapshots of memories without metadata are what they always were)
    # and in the row MAC.
    metadata: str | None = None

    # The row MAC as read (never in a snapshot), and whether it failed: only an admin's read
    # returns a tampered memory, flagged.
    mac: str | None = field(default=None, compare=False, repr=False)
    tampered: bool = field(default=False, compare=False)

    @property
    def reasons(self) -> list[str]:
        """Why screening flagged it (empty when it did not)."""
        return list(json.loads(self.flags)) if self.flags else []

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata object ({} when none; a row edited into invalid JSON shows its text
        under ``"_unreadable"``: only an admin's read of a tampered row gets that far)."""
        if self.metadata is None:
            return {}
        try:
            value = json.loads(self.metadata)
        except ValueError:
            return {"_unreadable": self.metadata}
        return value if isinstance(value, dict) else {"_unreadable": self.metadata}

    @property
    def source(self) -> dict[str, Any]:
        return {"kind": self.source_kind, "actor": self.source_actor, "key": self.source_key}

    @classmethod
    def from_row(cls, row: Row[Any]) -> Memory:
        return cls(
            id=int(row.id),
            project=row.project,
            type=row.type,
            content=row.content,
            content_hash=row.content_hash,
            confidence=float(row.confidence),
            status=row.status,
            source_chunk_id=row.source_chunk_id,
            reinforcement_count=int(row.reinforcement_count),
            superseded_by=row.superseded_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_reinforced_at=row.last_reinforced_at,
            source_kind=row.source_kind,
            source_actor=row.source_actor,
            source_key=row.source_key,
            tier=row.tier,
            flags=row.flags,
            independent_reinforcements=int(row.independent_reinforcements or 0),
            proposes=row.proposes,
            metadata=getattr(row, "metadata", None),
            mac=getattr(row, "mac", None),
        )

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Memory:
        """The memory a ledger snapshot records (the inverse of ``snapshot``)."""
        return cls(
            id=int(data["id"]),
            project=data["project"],
            type=data["type"],
            content=data["content"],
            content_hash=data["content_hash"],
            confidence=float(data["confidence"]),
            status=data["status"],
            source_chunk_id=data["source_chunk_id"],
            reinforcement_count=int(data["reinforcement_count"]),
            superseded_by=data["superseded_by"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            last_reinforced_at=_parse(data["last_reinforced_at"]),
            metadata=metadata_text(data.get("metadata")),
        )

    def snapshot(self) -> dict[str, Any]:
        """The memory as the ledger stores it: JSON values only, one encoding per value."""
        # Field by field rather than dataclasses.asdict, which deep-copies every value: every
        # memory mutation snapshots once or twice.
        data = {
            "id": self.id,
            "project": self.project,
            "type": self.type,
            "content": self.content,
            "content_hash": self.content_hash,
            "confidence": self.confidence,
            "status": self.status,
            "source_chunk_id": self.source_chunk_id,
            "reinforcement_count": self.reinforcement_count,
            "superseded_by": self.superseded_by,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_reinforced_at": _iso(self.last_reinforced_at),
        }
        if self.metadata is not None:
            data["metadata"] = self.meta
        return data

    def to_dict(self) -> dict[str, Any]:
        data = {
            **self.snapshot(),
            "metadata": self.meta,
            "source": self.source,
            "tier": self.tier,
            "flags": self.reasons,
            "independent_reinforcements": self.independent_reinforcements,
            "proposes": self.proposes,
        }
        if self.tampered:
            data["tampered"] = True
        return data


def metadata_text(value: Any) -> str | None:
    """A snapshot's metadata object back to its stored text (the ledger wrote it canonical)."""
    if value is None or value == {}:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class CreateResult:
    memory: Memory
    reinforced: bool

    def to_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.to_dict(), "reinforced": self.reinforced}


@dataclass(frozen=True)
class Project:
    name: str
    description: str
    created_at: datetime

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": _iso(self.created_at),
        }

    to_dict = snapshot


@dataclass(frozen=True)
class StateEntry:
    project: str
    category: str
    key: str
    value: str
    source: str
    created_at: datetime
    updated_at: datetime
    tampered: bool = field(default=False, compare=False)

    @property
    def entity_id(self) -> str:
        return state_entity_id(self.project, self.category, self.key)

    def snapshot(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "category": self.category,
            "key": self.key,
            "value": self.value,
            "source": self.source,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.snapshot()
        if self.tampered:
            data["tampered"] = True
        return data


@dataclass(frozen=True)
class Document:
    id: int
    project: str
    uri: str
    title: str
    content_hash: str
    size_bytes: int
    created_at: datetime
    updated_at: datetime

    def snapshot(self, chunk_count: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "project": self.project,
            "uri": self.uri,
            "title": self.title,
            "content_hash": self.content_hash,
            "size_bytes": self.size_bytes,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if chunk_count is not None:
            data["chunk_count"] = chunk_count
        return data
