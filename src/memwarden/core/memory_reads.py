"""Reading memories: one by id, or a page of them, each row's MAC checked (a tampered row is
refused, or for an admin's view listed flagged)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from memwarden.core import lifecycle
from memwarden.core import metadata as meta
from memwarden.core.memories import M, load
from memwarden.core.models import Memory
from memwarden.core.runtime import Runtime
from memwarden.errors import InvalidInputError, TamperedRowError

MAX_LIST_LIMIT = 500


def get(rt: Runtime, memory_id: int, *, include_tampered: bool = False) -> Memory:
    """A memory whose row MAC holds; a tampered one raises ``TamperedRowError``, or, with
    ``include_tampered`` (an admin's view), comes back flagged ``tampered``."""
    with rt.read() as conn:
        memory = load(conn, memory_id)
    return checked(rt, memory, include_tampered=include_tampered)


def checked(rt: Runtime, memory: Memory, *, include_tampered: bool) -> Memory:
    if rt.guard.memory_ok(memory):
        return memory
    if not include_tampered:
        raise TamperedRowError("memory", str(memory.id), memory.project)
    return replace(memory, tampered=True)


def list_memories(
    rt: Runtime,
    *,
    project: str | None = None,
    status: str | None = None,
    type: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
    projects: Collection[str] | None = None,
    include_tampered: bool = False,
    where: Any = None,
) -> list[Memory]:
    """Memories newest first; ``after_id`` is the cursor (the last id of the previous page).
    A tampered memory is left out, or with ``include_tampered`` listed flagged. ``where``:
    metadata conditions (core/metadata.py), AND-ed, applied in the query before its limit."""
    conditions = meta.parse_where(where)
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    if status is not None and status not in lifecycle.STATUSES:
        raise InvalidInputError(
            f"unknown status {status!r}: one of {', '.join(lifecycle.STATUSES)}"
        )
    query = select(M).order_by(M.c.id.desc()).limit(limit)
    if project is not None:
        query = query.where(M.c.project == project)
    if projects is not None:  # a key limited to some projects
        query = query.where(M.c.project.in_(sorted(projects)))
    if status is not None:
        query = query.where(M.c.status == status)
    if type is not None:
        query = query.where(M.c.type == type)
    if after_id is not None:
        query = query.where(M.c.id < after_id)
    with rt.read() as conn:
        if conditions:
            query = query.where(meta.clause(conditions, conn.dialect.name))
        rows = [Memory.from_row(row) for row in conn.execute(query)]
    found = []
    for memory in rows:
        if rt.guard.memory_ok(memory):
            found.append(memory)
        elif include_tampered:
            found.append(replace(memory, tampered=True))
    return found
