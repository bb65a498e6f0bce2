"""Helpers the core tests share: a full picture of the database, and "this changed nothing"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.db import schema
from memwarden.db.store import Store

State = dict[str, list[tuple[Any, ...]]]


READ_RECORDS = frozenset({"memory_reads"})


def db_state(store: Store | Memwarden) -> State:
    """Every row of every memwarden table, in primary-key order, plus the schema version.

    Only tables the database holds: schema.py may declare tables of a migration still to come."""
    if isinstance(store, Memwarden):
        store = store.store
    state: State = {}
    with store.engine.connect() as conn:
        present = table_names(conn)
        for table in schema.metadata.sorted_tables:
            # Who-read-what records reads (written off the reader's path, a moment later), not
            # state: a read between two snapshots is not a change.
            if table.name not in present or table.name in READ_RECORDS:
                continue
            order = list(table.primary_key.columns)
            # Only the columns it holds: an older schema lacks columns a later migration adds.
            columns = _held_columns(conn, table)
            rows = conn.execute(sa.select(*columns).order_by(*order)).all()
            state[table.name] = [tuple(row) for row in rows]
        state["alembic_version"] = [
            tuple(row)
            for row in conn.execute(
                sa.text("SELECT version_num FROM alembic_version ORDER BY version_num")
            )
        ]
    return state


def _held_columns(conn: sa.Connection, table: sa.Table) -> list[sa.Column[object]]:
    # The table is one of schema.py's own: a name we wrote, not input.
    query = sa.select(sa.text("*")).select_from(sa.table(table.name)).limit(0)
    names = set(conn.execute(query).keys())
    return [column for column in table.columns if column.name in names]


def table_names(conn: sa.Connection) -> set[str]:
    """The tables the database holds (one cheap query; the inspector is slow on PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return {row[0] for row in conn.execute(sa.text(query))}


def memwarden_tables(mw: Memwarden) -> list[str]:
    with mw.store.engine.connect() as conn:
        return sorted(table_names(conn) & {t.name for t in schema.metadata.sorted_tables})


def quick_state(mw: Memwarden, names: list[str]) -> tuple[Any, ...]:
    """A cheaper fingerprint for tight loops: the row count of every table in ``names`` (see
    ``memwarden_tables``) in one query, the memories and project state in full, and the
    ledger head (sequence and tag)."""
    with mw.store.engine.connect() as conn:
        counts = conn.execute(
            sa.text(
                "SELECT " + ", ".join(f"(SELECT count(*) FROM {name})" for name in names)  # noqa: S608
            )
        ).one()
        memories = conn.execute(sa.select(schema.memories).order_by(schema.memories.c.id)).all()
        state = conn.execute(
            sa.select(schema.project_state).order_by(schema.project_state.c.id)
        ).all()
        head = conn.execute(
            sa.select(schema.ledger.c.seq, schema.ledger.c.tag)
            .order_by(schema.ledger.c.seq.desc())
            .limit(1)
        ).first()
    return (
        dict(zip(names, counts, strict=True)),
        [tuple(r) for r in memories],
        [tuple(r) for r in state],
        tuple(head) if head else None,
    )


def table_counts(store: Store | Memwarden) -> dict[str, int]:
    return {name: len(rows) for name, rows in db_state(store).items()}


def ledger_count(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.ledger)).scalar_one())


def raises_and_changes_nothing(
    mw: Memwarden, error: type[BaseException], call: Callable[[], object], match: str | None = None
) -> BaseException:
    """Run ``call``, expect ``error``, and check every table (ledger included) is as it was."""
    before = db_state(mw)
    with pytest.raises(error, match=match) as caught:
        call()
    assert db_state(mw) == before, "a refused operation changed the database"
    return caught.value


def index_matches(mw: Memwarden, word: str, corpus: str = "memories") -> set[int]:
    """Ids whose full-text index entry matches ``word``, whatever their status (no filters)."""
    with mw.store.read() as conn:
        if mw.store.is_sqlite:
            fts = "memories_fts" if corpus == "memories" else "chunks_fts"
            query = sa.text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :q")  # noqa: S608
            return {int(r[0]) for r in conn.execute(query, {"q": f'"{word}"'})}
        query = sa.text(
            f"SELECT id FROM {corpus} WHERE content_tsv @@ plainto_tsquery('memwarden_english', :q)"  # noqa: S608
        )
        return {int(r[0]) for r in conn.execute(query, {"q": word})}


@contextmanager
def inserts_refused(mw: Memwarden, table: str) -> Iterator[None]:
    """Inserts into ``table`` raise (not a storage fault: the database says no)."""
    name = f"memwarden_test_refuse_{table}"
    with mw.store.engine.begin() as conn:
        if mw.store.is_sqlite:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test policy'); END"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test policy'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
    try:
        yield
    finally:
        with mw.store.engine.begin() as conn:
            conn.exec_driver_sql(
                f"DROP TRIGGER {name}" + ("" if mw.store.is_sqlite else f" ON {table}")
            )
            if not mw.store.is_sqlite:
                conn.exec_driver_sql(f"DROP FUNCTION {name}()")
