"""Projects and their trusted key/value state."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from memwarden.core import access, screening, validate
from memwarden.core.models import Project, StateEntry
from memwarden.core.runtime import Runtime
from memwarden.db import schema
from memwarden.errors import ConflictError, InvalidInputError, NotFoundError

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
) -> StateEntry | None:
    query = select(S).where(S.c.project == project, S.c.category == category, S.c.key == key)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        return None
    return StateEntry(
        row.project, row.category, row.key, row.value, row.source, row.created_at, row.updated_at
    )


def state_set(
    rt: Runtime, project: str, category: str, key: str, value: str, source: str = ""
) -> StateEntry:
    category = validate.key_part(category, "category")
    key = validate.key_part(key, "key")
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
        before = _state_row(m.conn, project, category, key, for_update=True)
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
                        )
                    )
            except IntegrityError:
                # A concurrent writer created this key first: update theirs instead.
                before = _state_row(m.conn, project, category, key, for_update=True)
                if before is None:
                    raise
        if before is None:
            after = StateEntry(project, category, key, value, source, m.now, m.now)
        else:
            m.conn.execute(
                update(S)
                .where(S.c.project == project, S.c.category == category, S.c.key == key)
                .values(value=value, source=source, updated_at=m.now)
            )
            after = StateEntry(project, category, key, value, source, before.created_at, m.now)
        m.record(
            "project_state",
            after.entity_id,
            project,
            "state_set",
            before.snapshot() if before else None,
            after.snapshot(),
        )
        return after


def state_get(rt: Runtime, project: str, category: str, key: str) -> StateEntry:
    access.check_read(project)
    with rt.read() as conn:
        validate.project_exists(conn, project)
        entry = _state_row(conn, project, category, key)
    if entry is None:
        raise NotFoundError(f"no state {category}/{key} in project {project!r}")
    return entry


def state_list(rt: Runtime, project: str, category: str | None = None) -> list[StateEntry]:
    access.check_read(project)
    query = select(S).where(S.c.project == project).order_by(S.c.category, S.c.key)
    if category is not None:
        query = query.where(S.c.category == category)
    with rt.read() as conn:
        validate.project_exists(conn, project)
        return [
            StateEntry(r.project, r.category, r.key, r.value, r.source, r.created_at, r.updated_at)
            for r in conn.execute(query)
        ]


def state_delete(rt: Runtime, project: str, category: str, key: str) -> StateEntry:
    access.check_state(project)
    with rt.mutation() as m:
        before = _state_row(m.conn, project, category, key, for_update=True)
        if before is None:
            raise NotFoundError(f"no state {category}/{key} in project {project!r}")
        m.conn.execute(
            delete(S).where(S.c.project == project, S.c.category == category, S.c.key == key)
        )
        m.record(
            "project_state", before.entity_id, project, "state_deleted", before.snapshot(), None
        )
        return before
