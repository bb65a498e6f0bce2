"""Human output: rich tables for what the commands return. User text is never markup."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

from rich.table import Table
from rich.text import Text

from memwarden.audit.records import LedgerRecord
from memwarden.audit.timetravel import BlameLine, FieldChange
from memwarden.cli.common import console, say
from memwarden.core.models import Memory, Project, StateEntry
from memwarden.core.recall import Hit

PREVIEW = 72


def preview(text: str, width: int = PREVIEW) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def value_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(value_text(cell)) for cell in row))
    console().print(table)


def memories(items: Sequence[Memory]) -> None:
    if not items:
        say("no memories match")
        return
    _table(
        None,
        ("id", "status", "type", "conf", "reinf", "project", "content"),
        (
            (
                m.id,
                m.status,
                m.type,
                f"{m.confidence:.2f}",
                m.reinforcement_count,
                m.project,
                preview(m.content),
            )
            for m in items
        ),
    )
    if len(items) > 1:
        say(f"{len(items)} memories; next page: --after {items[-1].id}")


def memory(item: Memory) -> None:
    for name, value in item.to_dict().items():
        say(f"{name:>20}: {value_text(value)}")


def projects(items: Sequence[Project]) -> None:
    if not items:
        say("no projects yet: create one with `memwarden project add NAME`")
        return
    _table(
        None,
        ("name", "description", "created"),
        ((p.name, p.description, p.created_at.isoformat(timespec="seconds")) for p in items),
    )


def state(items: Sequence[StateEntry]) -> None:
    if not items:
        say("no state")
        return
    _table(
        None,
        ("category", "key", "value", "source", "updated"),
        (
            (
                e.category,
                e.key,
                preview(e.value),
                e.source,
                e.updated_at.isoformat(timespec="seconds"),
            )
            for e in items
        ),
    )


def _provenance(hit: Hit) -> str:
    p = hit.provenance
    if hit.kind == "memory":
        parts = [f"{p['type']}, {p['status']}, conf {p['confidence']:.2f}"]
        if p.get("document"):
            parts.append(f"from {_short(p['document'])}")
        for old in p.get("supersedes", []):
            parts.append(f"replaced #{old['memory_id']} ({(old['at'] or '')[:10]}, {old['by']})")
        if p.get("replaced"):
            changed = p["replaced"]
            parts.append(f"replaced by #{changed['by_memory']} ({(changed['at'] or '')[:10]})")
        if p.get("metadata"):
            parts.append(f"metadata {value_text(p['metadata'])}")
        return "; ".join(parts)
    heading = f" § {p['heading']}" if p.get("heading") else ""
    return f"{_short(p['document'])}{heading}"


def _short(uri: str) -> str:
    """The file name: the full path is in --json; a table row has room for the name."""
    return PurePath(uri).name or uri


def hits(items: Sequence[Hit]) -> None:
    if not items:
        say("nothing recalled")
        return
    _table(
        None,
        ("score", "kind", "id", "preview", "provenance"),
        ((f"{h.score:.3f}", h.kind, h.id, preview(h.content, 60), _provenance(h)) for h in items),
    )


def _changed(record: LedgerRecord) -> str:
    if record.authentic is False:
        return "! EDITED outside memwarden: fails its tag"
    if record.erased:
        return "(payload erased)"
    before, after = record.before or {}, record.after or {}
    names = [
        name
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name) and name != "updated_at"
    ]
    if not before:
        return "(new)"
    return ", ".join(names) if names else "-"


def history(records: Sequence[LedgerRecord]) -> None:
    _table(
        None,
        ("seq", "time", "action", "actor", "changed", "note"),
        ((r.seq, r.ts, r.action, r.actor, _changed(r), r.note) for r in records),
    )


def recent(records: Sequence[LedgerRecord]) -> None:
    if not records:
        say("no ledger rows match")
        return
    _table(
        None,
        ("seq", "time", "actor", "action", "entity", "project", "preview"),
        (
            (
                r.seq,
                r.ts,
                r.actor,
                r.action,
                f"{r.entity_type} {r.entity_id}",
                r.project,
                "! EDITED: fails its tag" if r.authentic is False else r.preview(50),
            )
            for r in records
        ),
    )


def changes(items: Sequence[FieldChange]) -> None:
    if not items:
        say("no differences")
        return
    _table(None, ("field", "before", "after"), ((c.field, c.before, c.after) for c in items))


def blame(lines: Sequence[BlameLine]) -> None:
    _table(
        None,
        ("field", "value", "actor", "time", "seq", "action"),
        (
            (b.field, preview(value_text(b.value), 50), b.actor, b.ts, b.seq, b.action)
            for b in lines
        ),
    )


def snapshot(data: dict[str, Any]) -> None:
    for name, value in data.items():
        say(f"{name:>20}: {value_text(value)}")
