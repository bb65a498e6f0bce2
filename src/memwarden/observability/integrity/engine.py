"""The database engine's own checks.

SQLite: ``PRAGMA quick_check`` (``integrity_check`` with ``--full``, which also compares every
index with its table) and ``PRAGMA foreign_key_check`` (violations the relational checks already
name are left to them, so one broken reference is reported once). PostgreSQL: amcheck's
``bt_index_check`` on every B-tree index of memwarden's schema (with ``--full`` also
``heapallindexed`` and ``verify_heapam`` on every table), when the extension is installed in a
schema on the search path; otherwise the check is recorded as skipped, with the reason. The scan
creates the extension itself only when ``MEMWARDEN_INTEGRITY_AMCHECK_CREATE`` allows it.
"""

from __future__ import annotations

import structlog
from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import DatabaseError, DBAPIError

from memwarden.observability.integrity.context import CheckOutcome, ScanContext
from memwarden.observability.integrity.findings import Finding

log = structlog.get_logger(__name__)

# (child table, parent table) pairs whose broken references the relational checks report.
RELATIONAL_PAIRS = frozenset(
    {
        ("memories", "source_chunks"),
        ("memories", "memories"),
        ("source_chunks", "documents"),
        ("project_state", "projects"),
    }
)
MAX_MESSAGES = 100

_AMCHECK_SCHEMA = text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'amcheck' AND n.nspname = ANY (current_schemas(true))"
)
_AMCHECK_AVAILABLE = text("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'")
_BTREE_INDEXES = text(
    "SELECT c.oid, c.relname FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_am a ON a.oid = c.relam "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE a.amname = 'btree' AND n.nspname = current_schema() "
    "AND i.indisvalid AND i.indisready ORDER BY c.relname"
)
# amcheck's schema is on the search path (see _AMCHECK_SCHEMA): called unqualified.
_INDEX_CHECK = text("SELECT bt_index_check(CAST(CAST(:oid AS oid) AS regclass), :heap)")
_HEAP_CHECK = text("SELECT * FROM verify_heapam(CAST(CAST(:oid AS oid) AS regclass))")
_TABLES = text(
    "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname"
)


# -- SQLite -----------------------------------------------------------------------------------
def check_sqlite_pages(ctx: ScanContext) -> CheckOutcome:
    """quick_check (incremental runs) or integrity_check (--full): the file's own structure."""
    pragma = "integrity_check" if ctx.full else "quick_check"
    pages = int(ctx.conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    # SQLite 3.44+ also checks FTS5 tables here, from the connection's cached index structure:
    # a pooled connection whose cache predates another connection's write reports a false
    # "malformed inverted index". Any read of the index reloads the structure first.
    for fts in ("memories_fts", "chunks_fts"):
        try:
            with ctx.conn.begin_nested():
                ctx.conn.exec_driver_sql(f"SELECT rowid FROM {fts} LIMIT 1").all()  # noqa: S608
        except DatabaseError:
            pass  # a missing or broken index: the check below (and fulltext_index) say so
    try:
        messages = [
            str(row[0]) for row in ctx.conn.exec_driver_sql(f"PRAGMA {pragma}({MAX_MESSAGES})")
        ]
    except DatabaseError as exc:
        # Damage bad enough to stop the check itself ("database disk image is malformed").
        messages = [str(exc.orig) if exc.orig is not None else str(exc)]
    problems = [m for m in messages if m != "ok"]
    if problems and all("FTS5" in m for m in problems):
        problems = _fts_problems_confirmed(ctx, pragma, problems)
    outcome = CheckOutcome(scanned=pages)
    if problems:
        more = " (at least: SQLite stops listing at 100)" if len(problems) >= MAX_MESSAGES else ""
        outcome.findings.append(
            Finding.of(
                f"sqlite_{pragma}",
                "critical",
                problems,
                f"SQLite {pragma} reports {len(problems)} problems{more}: the file is damaged; "
                "restore it from a backup",
            )
        )
    return outcome


def _fts_problems_confirmed(ctx: ScanContext, pragma: str, problems: list[str]) -> list[str]:
    """The FTS5 problems a new connection also sees. A pooled connection keeps FTS5 state
    from before another process (a CLI next to the server) changed an indexed table, and its
    check then reports "malformed inverted index" for an index that is sound (measured on
    SQLite 3.50: a fresh connection reports ok). So an FTS5-only report is confirmed on a
    connection of its own before a file is called damaged."""
    engine = ctx.conn.engine
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    fresh = engine.dialect.connect(*args, **kwargs)
    try:
        rows = fresh.execute(f"PRAGMA {pragma}({MAX_MESSAGES})").fetchall()
    except Exception as exc:  # noqa: BLE001 - any failure: keep what the scan saw
        log.warning("integrity_fts_recheck_failed", error=str(exc))
        return problems
    finally:
        fresh.close()
    return [str(row[0]) for row in rows if str(row[0]) != "ok"]


def check_sqlite_foreign_keys(ctx: ScanContext) -> CheckOutcome:
    rows = ctx.conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    broken = [
        f"{row[0]} row {row[1]} -> {row[2]}"
        for row in rows
        if (str(row[0]), str(row[2])) not in RELATIONAL_PAIRS
    ]
    outcome = CheckOutcome(scanned=len(rows))
    if broken:
        outcome.findings.append(
            Finding.of(
                "sqlite_foreign_key_check",
                "warning",
                broken,
                f"{len(broken)} rows reference a row that does not exist (beyond the references "
                "the relational checks report)",
            )
        )
    return outcome


# -- PostgreSQL -------------------------------------------------------------------------------
def check_pg_amcheck(ctx: ScanContext) -> CheckOutcome:
    conn = ctx.conn
    if conn.execute(_AMCHECK_SCHEMA).first() is None:
        reason = _install_amcheck(conn) if ctx.amcheck_create else _not_installed(conn)
        if reason is not None:
            return CheckOutcome(skipped=reason)
    problems: list[str] = []
    indexes = conn.execute(_BTREE_INDEXES).all()
    for oid, name in indexes:
        error = _attempt(conn, _INDEX_CHECK, {"oid": int(oid), "heap": ctx.full})
        if error is not None:
            problems.append(f"index {name}: {error}")
    scanned = len(indexes)
    if ctx.full:
        tables = conn.execute(_TABLES).all()
        scanned += len(tables)
        for oid, name in tables:
            with conn.begin_nested():
                for row in conn.execute(_HEAP_CHECK, {"oid": int(oid)}):
                    problems.append(f"table {name} block {row.blkno}: {row.msg}")
    outcome = CheckOutcome(scanned=scanned)
    if problems:
        outcome.findings.append(
            Finding.of(
                "pg_amcheck",
                "critical",
                problems,
                f"amcheck reports {len(problems)} problems in memwarden's indexes or tables: "
                "rebuild the named indexes (REINDEX) or restore from a backup",
            )
        )
    return outcome


def _attempt(conn: Connection, statement: TextClause, params: dict[str, object]) -> str | None:
    """Run one amcheck function in a savepoint: a corrupt index raises, and that is a finding."""
    try:
        with conn.begin_nested():
            conn.execute(statement, params)
    except DBAPIError as exc:
        return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
    return None


def _not_installed(conn: Connection) -> str:
    if conn.execute(_AMCHECK_AVAILABLE).first() is None:
        return "the amcheck extension is not available on this server"
    return (
        "the amcheck extension is not installed in a schema on the search path: "
        "CREATE EXTENSION amcheck (or set MEMWARDEN_INTEGRITY_AMCHECK_CREATE=1)"
    )


def _install_amcheck(conn: Connection) -> str | None:
    """CREATE EXTENSION amcheck, allowed by the settings; the reason it could not, or None."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        log.warning("integrity_amcheck_create_failed", error=reason)
        return f"the amcheck extension could not be created: {reason}"
    if conn.execute(_AMCHECK_SCHEMA).scalar_one_or_none() is None:
        return "the amcheck extension exists in a schema outside the search path"
    return None
