"""The full-text indexes: does each one still match the rows it indexes?

SQLite: FTS5's own ``integrity-check`` with rank 1, which also compares an external-content
index with its table. It is an INSERT command, so it runs on a connection of its own in a
transaction that is rolled back (on the scan's read snapshot it would need the write lock).
PostgreSQL: every indexed document matches its row (the stored ``content_tsv`` equals the
vector of the row's text now, computed by the column's own generation expression read from the
catalog, so with the text search configuration the index was built with: ``memwarden_english``
since migration 0013, ``simple`` before) and the GIN index is valid and ready. A default scan
compares the rows written since the previous scan's snapshot only, unless the configuration's
digest changed since (then, and with ``--full``, every row).
A broken index makes recall miss or fail ("database disk image is malformed"); ``--fix``
rebuilds it (core/repair.py), an audited repair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Table, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from memwarden.db import faults, schema
from memwarden.observability.integrity.context import CheckOutcome, ScanContext, written_since
from memwarden.observability.integrity.findings import Finding

CHECK = "fulltext_index"


@dataclass(frozen=True)
class Index:
    """One full-text index: its SQLite FTS5 table, its PostgreSQL table and GIN index."""

    sqlite_fts: str
    table: str
    pg_index: str


INDEXES = (
    Index("memories_fts", "memories", "ix_memories_content_tsv"),
    Index("chunks_fts", "source_chunks", "ix_source_chunks_content_tsv"),
)

# How the stored vector is computed: the generated column's expression, as the server has it.
_VECTOR_EXPRESSION = text(
    "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
    "JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
    "JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = current_schema() AND a.attname = 'content_tsv'"
)


def pg_vector(conn: Connection, index: Index) -> str | None:
    """The SQL expression that computes ``index.table``'s stored ``content_tsv`` (None: the
    column is not a generated one)."""
    found = conn.execute(_VECTOR_EXPRESSION, {"table": index.table}).scalar_one_or_none()
    return None if found is None else str(found)


def broken_indexes(
    conn: Connection, only: Callable[[Table], ColumnElement[bool] | None] | None = None
) -> list[tuple[Index, str]]:
    """Every full-text index that fails its check, with why. ``conn``: not in a transaction
    that must stay read-only (SQLite runs the check in a transaction it rolls back).
    ``only`` (PostgreSQL): a filter per table to the rows whose stored vector is compared
    (an incremental scan's rows written since the previous one); the index's own state is
    always checked."""
    if conn.dialect.name == "sqlite":
        return [(index, why) for index in INDEXES if (why := _sqlite_problem(conn, index))]
    return [(index, why) for index in INDEXES if (why := _pg_problem(conn, index, only))]


class IndexCheckBusy(Exception):
    """SQLite's check is an INSERT command, so it needs the write lock: another writer held it
    past the busy timeout. Nothing is known of the index then, and saying it is broken would
    send an operator to rebuild a sound one."""


def _sqlite_problem(conn: Connection, index: Index) -> str | None:
    statement = (
        f"INSERT INTO {index.sqlite_fts}({index.sqlite_fts}, rank) VALUES ('integrity-check', 1)"  # noqa: S608
    )
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin() as transaction:
            conn.exec_driver_sql(statement)
            transaction.rollback()
    except DBAPIError as exc:
        why = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        if faults.classify(why) == faults.LOCKED:
            raise IndexCheckBusy(f"{index.table}: {why}") from exc
        return why
    return None


def _pg_problem(
    conn: Connection,
    index: Index,
    only: Callable[[Table], ColumnElement[bool] | None] | None = None,
) -> str | None:
    state = conn.execute(
        text(
            "SELECT i.indisvalid AND i.indisready FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :name AND n.nspname = current_schema()"
        ),
        {"name": index.pg_index},
    ).scalar_one_or_none()
    if state is None:
        return f"the index {index.pg_index} is missing"
    if not state:
        return f"the index {index.pg_index} is not valid (a failed build or a damaged index)"
    vector = pg_vector(conn, index)
    if vector is None:
        return f"{index.table}.content_tsv is not computed from the row's text"
    table = schema.metadata.tables[index.table]
    condition = only(table) if only is not None else None
    stale_rows = select(func.count()).select_from(table)
    stale_rows = stale_rows.where(text(f"content_tsv IS DISTINCT FROM {vector}"))
    if condition is not None:
        stale_rows = stale_rows.where(condition)
    stale = conn.execute(stale_rows).scalar_one()
    if stale:
        return f"{stale} rows of {index.table} are indexed with other words than they hold"
    return None


def check_fulltext(ctx: ScanContext) -> CheckOutcome:
    if ctx.is_sqlite:
        # Its own connection: the check is an INSERT command, the scan's snapshot is read-only.
        # And a new one, not a pooled one: a connection that has used an FTS5 table keeps
        # state from before another connection (another process, a CLI next to the server)
        # changed the indexed table, and its integrity-check then reports a sound index as
        # malformed (SQLite 3.50; a new connection reports it sound).
        engine = ctx.conn.engine
        fresh = create_engine(engine.url, module=engine.dialect.dbapi, poolclass=NullPool)
        try:
            with fresh.connect() as conn:
                broken = broken_indexes(conn)
        except IndexCheckBusy as exc:
            return CheckOutcome(skipped=f"not checked: another writer held the database ({exc})")
        finally:
            fresh.dispose()
    else:
        unseen = ctx.previous_snapshot(CHECK)
        ctx.fulltext_config = configuration_digest(ctx.conn)
        previous = ctx.previous
        if previous is None or previous.fulltext_config != ctx.fulltext_config:
            unseen = None  # every stored vector may now differ: compare them all
        broken = broken_indexes(
            ctx.conn,
            None if unseen is None else lambda table: written_since(table.name, unseen),
        )
    outcome = CheckOutcome(scanned=len(INDEXES))
    if broken:
        outcome.findings.append(
            Finding.of(
                CHECK,
                "critical",
                [
                    f"{index.sqlite_fts if ctx.is_sqlite else index.pg_index}: {why}"
                    for index, why in broken
                ],
                f"{len(broken)} full-text indexes do not match their rows: recall may miss or "
                "fail; `memwarden integrity check --fix` rebuilds them",
            )
        )
    return outcome


# What a stored vector depends on besides its row: the text search configurations, their
# token mappings, dictionaries (with their options) and templates, in the store's schema and
# pg_catalog. A change there makes every row's text compute to another vector with no row
# rewritten. (A dictionary's files changed on disk are not seen: ``--full`` compares every row.)
_CONFIGURATION = text(
    "SELECT md5(coalesce(string_agg(item, '|' ORDER BY item), '')) FROM ("
    " SELECT concat_ws(':', cn.nspname, c.cfgname, m.maptokentype, m.mapseqno, dn.nspname,"
    " d.dictname, d.dictinitoption, tn.nspname, t.tmplname, t.tmplinit::text,"
    " t.tmpllexize::text, c.cfgparser::text) AS item"
    " FROM pg_ts_config c JOIN pg_namespace cn ON cn.oid = c.cfgnamespace"
    " LEFT JOIN pg_ts_config_map m ON m.mapcfg = c.oid"
    " LEFT JOIN pg_ts_dict d ON d.oid = m.mapdict"
    " LEFT JOIN pg_namespace dn ON dn.oid = d.dictnamespace"
    " LEFT JOIN pg_ts_template t ON t.oid = d.dicttemplate"
    " LEFT JOIN pg_namespace tn ON tn.oid = t.tmplnamespace"
    " WHERE cn.nspname IN (current_schema(), 'pg_catalog')) AS items"
)


def configuration_digest(conn: Connection) -> str:
    """A digest of the text search configuration every stored vector was computed with."""
    return str(conn.execute(_CONFIGURATION).scalar_one())


def rebuild(conn: Connection, index: Index) -> None:
    """Rebuild one index from its table, on the caller's write transaction."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f"INSERT INTO {index.sqlite_fts}({index.sqlite_fts}) VALUES ('rebuild')"  # noqa: S608
        )
        return
    # A stale stored vector is recomputed by rewriting its row; then the index is rebuilt.
    vector = pg_vector(conn, index)
    if vector is not None:
        conn.exec_driver_sql(
            f"UPDATE {index.table} SET content = content "  # noqa: S608
            f"WHERE content_tsv IS DISTINCT FROM {vector}"
        )
    conn.exec_driver_sql(f"REINDEX INDEX {index.pg_index}")
