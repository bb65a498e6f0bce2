"""Projects and their trusted key/value state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from memwarden.audit import rowmac
from memwarden.audit.entries import state_entity_id
from memwarden.core import access, screening, validate
from memwarden.core.models import Project, StateEntry
from memwarden.core.runtime import Mutation, Runtime
from memwarden.db import schema
from memwarden.errors import ConflictError, InvalidInputError, NotFoundError, TamperedRowError

P = schema.projects
S = schema.project_state


def add(rt: Runtime, name: str, description: str = "") -> Project:
    validate.project_name(name)
    with rt.mutation() as m:
        if m.conn.execute(select(P.c.name).where(P.c.name == name)).first() is not None:
            raise ConflictError(f"project {name!r} already exists")
        m.conn.execute(insert(P).values(name=name, description=description, created_at=m.now))
        project = Project(name, description, m.now)
        m.record("project", name, name, "created", None, project.snapshot())
        return project


def list_projects(rt: Runtime) -> list[Project]:
    with rt.read() as conn:
        rows = conn.execute(select(P).order_by(P.c.name))
        return [Project(row.name, row.description, row.created_at) for row in rows]


def remove(rt: Runtime, name: str) -> None:
    """Delete an empty project; one that still holds anything is refused."""
    with rt.mutation() as m:
        row = m.conn.execute(select(P).where(P.c.name == name).with_for_update()).first()
        if row is None:
            raise NotFoundError(f"unknown project {name!r}")
        for table in (schema.memories, schema.project_state, schema.documents, schema.interactions):
            count = m.conn.execute(
                select(func.count()).select_from(table).where(table.c.project == name)
            ).scalar_one()
            if count:
                raise ConflictError(
                    f"project {name!r} still holds {count} {table.name}: not deleted"
                )
        m.conn.execute(delete(P).where(P.c.name == name))
        m.record(
            "project",
            name,
            name,
            "deleted",
            Project(row.name, row.description, row.created_at).snapshot(),
            None,
        )


def _state_row(
    conn: Connection, project: str, category: str, key: str, *, for_update: bool = False
) -> Row[Any] | None:
    query = select(S).where(S.c.project == project, S.c.category == category, S.c.key == key)
    return conn.execute(query.with_for_update() if for_update else query).first()


def _entry(row: Row[Any], *, tampered: bool = False) -> StateEntry:
    return StateEntry(
        row.project,
        row.category,
        row.key,
        row.value,
        row.source,
        row.created_at,
        row.updated_at,
        tampered=tampered,
    )


def _checked_before(m: Mutation, row: Row[Any] | None) -> StateEntry | None:
    """The entry a mutation replaces; one edited outside memwarden is refused (its value
    would enter the ledger as the one replaced)."""
    if row is None:
        return None
    m.guard.require_state(row)
    return _entry(row)


def state_set(
    rt: Runtime, project: str, category: str, key: str, value: str, source: str = ""
) -> StateEntry:
    category = validate.key_part(category, "category", validate.MAX_CATEGORY_CHARS)
    key = validate.key_part(key, "key")
    validate.recordable_id(state_entity_id(project, category, key), "the state entry's name")
    source = validate.state_source(source)
    value = validate.content(rt.settings, value, what="value")
    access.check_state(project)
    reasons = screening.screen(f"{category} {key} {value} {source}")
    if reasons:
        # Project state is served first and as trusted: it has no candidate stage to hold a
        # flagged value in, so it is refused outright.
        raise InvalidInputError(
            f"screening refused this state value ({'; '.join(reasons)}): project state is "
            "served as trusted fact; write it as a memory for triage instead"
        )
    with rt.mutation() as m:
        validate.project_exists(m.conn, project)
        before = _checked_before(m, _state_row(m.conn, project, category, key, for_update=True))
        if before is None:
            try:
                with m.conn.begin_nested():
                    m.conn.execute(
                        insert(S).values(
                            project=project,
                            category=category,
                            key=key,
                            value=value,
                            source=source,
                            created_at=m.now,
                            updated_at=m.now,
                            mac=m.guard.macs.state(
                                StateEntry(project, category, key, value, source, m.now, m.now)
                            ),
                        )
                    )
            except IntegrityError:
                # A concurrent writer created this key first: update theirs instead.
                row = _state_row(m.conn, project, category, key, for_update=True)
                if row is None:
                    raise
                before = _checked_before(m, row)
        if before is None:
            after = StateEntry(project, category, key, value, source, m.now, m.now)
        else:
            after = StateEntry(project, category, key, value, source, before.created_at, m.now)
            m.conn.execute(
                update(S)
                .where(S.c.project == project, S.c.category == category, S.c.key == key)
                .values(value=value, source=source, updated_at=m.now, mac=m.guard.macs.state(after))
            )
        m.record(
            "project_state",
            after.entity_id,
            project,
            "state_set",
            before.snapshot() if before else None,
            after.snapshot(),
        )
        return after


def state_get(
    rt: Runtime, project: str, category: str, key: str, *, include_tampered: bool = False
) -> StateEntry:
    """A state entry whose row MAC holds; a tampered one raises ``TamperedRowError``, or, with
    ``include_tampered`` (an admin's view), comes back flagged ``tampered``."""
    access.check_read(project)
    with rt.read() as conn:
        validate.project_exists(conn, project)
        row = _state_row(conn, project, category, key)
    if row is None:
        raise NotFoundError(f"no state {category}/{key} in project {project!r}")
    if rt.guard.state_ok(row):
        return _entry(row)
    if not include_tampered:
        raise TamperedRowError(rowmac.STATE, state_entity_id(project, category, key), project)
    return _entry(row, tampered=True)


def state_list(
    rt: Runtime, project: str, category: str | None = None, *, include_tampered: bool = False
) -> list[StateEntry]:
    """A project's state; a tampered entry is left out, or with ``include_tampered`` listed
    flagged."""
    access.check_read(project)
    query = select(S).where(S.c.project == project).order_by(S.c.category, S.c.key)
    if category is not None:
        query = query.where(S.c.category == category)
    with rt.read() as conn:
        validate.project_exists(conn, project)
        rows = conn.execute(query).all()
    found = []
    for row in rows:
        if rt.guard.state_ok(row):
            found.append(_entry(row))
        elif include_tampered:
            found.append(_entry(row, tampered=True))
    return found


def state_delete(rt: Runtime, project: str, category: str, key: str) -> StateEntry:
    access.check_state(project)
    with rt.mutation() as m:
        before = _checked_before(m, _state_row(m.conn, project, category, key, for_update=True))
        if before is None:
            raise NotFoundError(f"no state {category}/{key} in project {project!r}")
        m.conn.execute(
            delete(S).where(S.c.project == project, S.c.category == category, S.c.key == key)
        )
        m.record(
            "project_state", before.entity_id, project, "state_deleted", before.snapshot(), None
        )
        return before


def state_restore_in(m: Mutation, row_id: int, version: dict[str, Any], note: str) -> StateEntry:
    """Put a tampered state entry back to ``version`` (its last ledger snapshot), with a fresh
    MAC: the repair of ``integrity check --fix``. As for memories, the ledger entry's
    ``before`` is the version the ledger last recorded."""
    row = m.conn.execute(select(S).where(S.c.id == row_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"project state row {row_id} not found")
    if (version["project"], version["category"], version["key"]) != (
        row.project,
        row.category,
        row.key,
    ):
        raise InvalidInputError(f"the version given is not project state row {row_id}'s")
    after = StateEntry(
        row.project,
        row.category,
        row.key,
        version["value"],
        version["source"],
        datetime.fromisoformat(version["created_at"]),
        m.now,
    )
    m.conn.execute(
        update(S)
        .where(S.c.id == row_id)
        .values(
            value=after.value,
            source=after.source,
            created_at=after.created_at,
            updated_at=after.updated_at,
            mac=m.guard.macs.state(after),
        )
    )
    m.record(
        "project_state",
        after.entity_id,
        after.project,
        "state_restored",
        version,
        after.snapshot(),
        note,
    )
    return after
