"""Whether the database holds every table and column memwarden's schema defines: what the
schema's version number cannot tell (a table dropped or renamed outside memwarden leaves the
version as it was)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from memwarden.db import schema

# Every column of every table, in one query (SQLAlchemy's inspector asks once a table: ~0.6 s
# for memwarden's tables on PostgreSQL).
_COLUMNS = {
    "sqlite": text(
        "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c "
        "WHERE m.type = 'table'"
    ),
    "postgresql": text(
        "SELECT c.relname, a.attname FROM pg_catalog.pg_class AS c "
        "JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    ),
}


# Tables the migrations create in SQL of their own, outside the metadata: SQLite's full-text
# indexes (a recall needs them as much as it needs ``memories``).
_RAW_TABLES = {
    "sqlite": ("memories_fts", "memories_fts_vocab", "chunks_fts", "chunks_fts_vocab"),
    "postgresql": (),
}


def missing_parts(conn: Connection) -> list[str]:
    """The tables and columns of memwarden's schema the database lacks, as ``table NAME`` and
    ``column TABLE.NAME``; empty when it holds them all."""
    present: dict[str, set[str]] = {}
    for table_name, column_name in conn.execute(_COLUMNS[conn.dialect.name]):
        present.setdefault(str(table_name), set()).add(str(column_name))
    missing = [f"table {name}" for name in _RAW_TABLES[conn.dialect.name] if name not in present]
    for table in schema.metadata.sorted_tables:
        found = present.get(table.name)
        if found is None:
            missing.append(f"table {table.name}")
            continue
        missing += [
            f"column {table.name}.{column.name}"
            for column in table.columns
            if column.name not in found
        ]
    return missing
