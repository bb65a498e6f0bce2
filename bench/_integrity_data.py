"""A large, healthy memwarden database for the integrity, checkpoint and scale benches, written
straight into SQLite or PostgreSQL.

The rows (memories and their genuine ledger, byte for byte as memwarden writes them) come from
``bench/_scale_rows.py``. What makes 10M ledger rows a matter of minutes:

- the rows are made on a thread of their own, a batch ahead of the database, which takes the
  previous batch meanwhile (the drivers let go of the GIL while the server or SQLite works);
- the secondary indexes of ``memories`` and ``ledger`` are dropped inside the load's
  transaction and made again from their own DDL, read from the catalogue, before it commits:
  one sort per index instead of millions of scattered B-tree inserts. Nothing else sees the
  tables meanwhile; a unique index is checked as it is rebuilt; primary keys, constraints and
  triggers stay in place;
- PostgreSQL: ``COPY`` of text we write per batch; SQLite: ``executemany`` in one transaction
  with ``synchronous=OFF`` on the loader's own connection (for the load only: memwarden's
  connections keep their own setting), and the full-text index rebuilt at the end by FTS5
  rather than fed one memory at a time by its trigger (``SQLITE_FTS``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from bench._corpus import EPOCH
from bench._harness import raw_sqlite_connect as _connect
from bench._scale_rows import CHUNKS_PER_DOCUMENT, DOCUMENTS, PROJECTS, Rows, rows
from memwarden import Memwarden
from memwarden.audit.chain import ChainKey
from memwarden.audit.witness import Head

BATCH = 5_000  # memories; a multiple of 10, so a superseded memory's successor is in its batch
LOADED = ("memories", "ledger")  # the tables whose secondary indexes are rebuilt after the load
# SQLite's full-text index of memories and the trigger that keeps it: the trigger is dropped for
# the load and the index rebuilt from the table by FTS5 itself (one pass, a third of the CPU of
# a million trigger inserts), then the trigger made again from its own DDL.
SQLITE_FTS = ("memories_fts", "memories_fts_ai")

MEMORY_INSERT = (
    "INSERT INTO memories (id, project, type, content, content_hash, confidence, status, "
    "source_chunk_id, reinforcement_count, superseded_by, created_at, updated_at, "
    "last_reinforced_at, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LEDGER_INSERT = (
    "INSERT INTO ledger (seq, entity_type, entity_id, project, action, actor, ts, "
    "payload_digest, prev_tag, tag) VALUES (?, 'memory', ?, ?, ?, ?, ?, ?, ?, ?)"
)
PAYLOAD_INSERT = "INSERT INTO ledger_payloads (seq, body, erased_at) VALUES (?, ?, NULL)"
PG_MEMORY_COLUMNS = (
    "id, project, type, content, content_hash, confidence, status, source_chunk_id, "
    "reinforcement_count, superseded_by, created_at, updated_at, last_reinforced_at, mac"
)
PG_LEDGER_COLUMNS = (
    "seq, entity_type, entity_id, project, action, actor, ts, payload_digest, prev_tag, tag"
)
# COPY's text format: a tab between fields, \N for NULL, the rest escaped (_copy_text). Ids,
# names, hex digests and times hold nothing to escape.
LEDGER_LINE = "%d\tmemory\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n"
MEMORY_LINE = "%d\t%s\t%s\t%s\t%s\t%r\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n"

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Batch = TypeVar("Batch")


def _stored(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _copy_text(text: str) -> str:
    """A text field in COPY's text format: backslash, tab, newline and carriage return escaped
    (JSON and the memories' texts here hold no raw control character: the test is cheap)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(COPY_ESCAPES)
    return text


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _ahead(
    key: ChainKey,
    head: Head,
    memories: int,
    ledger_rows: int | None,
    shape: Callable[[list[Rows]], Batch],
) -> Iterator[Batch]:
    """``shape`` of each ``BATCH`` memories' rows, made on a thread of its own one batch ahead
    of the caller: the caller's database work and the rows' hashing overlap."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            batch: list[Rows] = []
            for made in rows(key, head, memories, ledger_rows):
                batch.append(made)
                if len(batch) >= BATCH:
                    if not put(("batch", shape(batch))):
                        return
                    batch = []
            if batch and not put(("batch", shape(batch))):
                return
            put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put(("error", exc))

    worker = threading.Thread(target=make, name="bench-rows", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = handoff.get()
            if kind == "error":
                raise item
            if kind == "done":
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _sqlite_batch(batch: list[Rows]) -> tuple[list[Any], list[Any], list[Any]]:
    memories: list[Any] = []
    ledger: list[Any] = []
    payloads: list[Any] = []
    for row, chain_rows, chain_payloads in batch:
        *fields, mac = row
        fields[10], fields[11] = _stored(fields[10]), _stored(fields[11])
        fields[12] = None if fields[12] is None else _stored(fields[12])
        memories.append((*fields, mac))
        ledger.extend(chain_rows)
        payloads.extend(chain_payloads)
    return memories, ledger, payloads


def generate(
    path: str,
    key: ChainKey,
    head: Head,
    memories: int,
    advance: Callable[[int], None],
    ledger_rows: int | None = None,
) -> int:
    """Write ``memories`` memories and their ledger after ``head`` into the SQLite file at
    ``path``; returns the ledger rows written."""
    conn = _connect(path, isolation_level=None)
    try:
        # This connection's own settings, for the load only (memwarden's keep theirs).
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")
        conn.execute("BEGIN")
        written = _fill_sqlite(conn, key, head, memories, advance, ledger_rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return written


def _fill_sqlite(
    conn: Any,
    key: ChainKey,
    head: Head,
    memories: int,
    advance: Callable[[int], None],
    ledger_rows: int | None,
) -> int:
    _projects_and_chunks(conn)
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN (?, ?)",
        LOADED,
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    fts, trigger = SQLITE_FTS
    (trigger_sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,)
    ).fetchone()
    conn.execute(f'DROP TRIGGER "{trigger}"')
    written = 0
    for memory_rows, ledger, payloads in _ahead(key, head, memories, ledger_rows, _sqlite_batch):
        conn.executemany(MEMORY_INSERT, memory_rows)
        conn.executemany(LEDGER_INSERT, ledger)
        conn.executemany(PAYLOAD_INSERT, payloads)
        written += len(ledger)
        advance(len(memory_rows))
    conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # noqa: S608 - our own name
    conn.execute(trigger_sql)
    for _name, sql in indexes:
        conn.execute(sql)
    return written


def _pg_batch(batch: list[Rows]) -> tuple[bytes, bytes, bytes, int, int]:
    memories: list[str] = []
    ledger: list[str] = []
    payloads: list[str] = []
    for row, chain_rows, chain_payloads in batch:
        memories.append(
            MEMORY_LINE
            % (row[0], row[1], row[2], _copy_text(row[3]), row[4], row[5], row[6],
               *map(_copy_value, row[7:]))
        )  # fmt: skip
        ledger.extend(LEDGER_LINE % line for line in chain_rows)
        payloads.extend(f"{seq}\t{_copy_text(body)}\n" for seq, body in chain_payloads)
    return (
        "".join(memories).encode(),
        "".join(ledger).encode(),
        "".join(payloads).encode(),
        len(memories),
        len(ledger),
    )


def _secondary_indexes_pg(cur: Any) -> list[tuple[str, str]]:
    """(name, DDL) of each index of the loaded tables that backs no constraint."""
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = ANY(%s::regclass[]) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        (list(LOADED),),
    )
    return list(cur.fetchall())


def generate_pg(
    mw: Memwarden,
    memories: int,
    advance: Callable[[int], None],
    ledger_rows: int | None = None,
) -> int:
    """The same data on PostgreSQL through COPY (the only way to load 10M rows in minutes),
    in one transaction, a batch of memories and their ledger rows at a time (a superseded
    memory names one two ids on, always in the same batch); the sequences are moved past the
    ids written and the tables analysed. Returns the ledger rows written."""
    key, head = mw.ledger.key, mw.anchor()
    raw: Any = mw.store.engine.raw_connection()
    written = 0
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            _projects_and_chunks_pg(cur)
            indexes = _secondary_indexes_pg(cur)
            for name, _ddl in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for memory_text, ledger_text, payload_text, count, chained in _ahead(
                key, head, memories, ledger_rows, _pg_batch
            ):
                for statement, data in (
                    (f"COPY memories ({PG_MEMORY_COLUMNS}) FROM STDIN", memory_text),
                    (f"COPY ledger ({PG_LEDGER_COLUMNS}) FROM STDIN", ledger_text),
                    ("COPY ledger_payloads (seq, body) FROM STDIN", payload_text),
                ):
                    with cur.copy(statement) as copy:
                        copy.write(data)
                written += chained
                advance(count)
            # A session setting, for this transaction's index builds only.
            cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for _name, ddl in indexes:
                cur.execute(ddl)
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('memories', 'id'), "
                "(SELECT max(id) FROM memories))"
            )
        conn.commit()
    finally:
        raw.close()
    with mw.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for table in ("memories", "ledger", "ledger_payloads", "source_chunks"):
            c.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return written


def _projects_and_chunks_pg(cur: Any) -> None:
    cur.executemany(
        "INSERT INTO projects (name, description, created_at) VALUES (%s, '', %s) "
        "ON CONFLICT DO NOTHING",
        [(name, EPOCH) for name in PROJECTS],
    )
    with cur.copy(
        "COPY documents (id, project, uri, title, content_hash, size_bytes, created_at, "
        "updated_at) FROM STDIN"
    ) as copy:
        for document in range(1, DOCUMENTS + 1):
            copy.write_row(
                (
                    document,
                    "atlas",
                    f"doc-{document}.md",
                    "",
                    f"{document:064d}",
                    1000,
                    EPOCH,
                    EPOCH,
                )
            )
    with cur.copy(
        "COPY source_chunks (id, document_id, project, ordinal, heading, content, created_at) "
        "FROM STDIN"
    ) as copy:
        for document in range(1, DOCUMENTS + 1):
            for ordinal in range(CHUNKS_PER_DOCUMENT):
                copy.write_row(
                    (
                        (document - 1) * CHUNKS_PER_DOCUMENT + ordinal + 1,
                        document,
                        "atlas",
                        ordinal,
                        "",
                        f"Chunk {ordinal} of document {document}.",
                        EPOCH,
                    )
                )
    for table in ("documents", "source_chunks"):
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - our names
            f"(SELECT max(id) FROM {table}))"
        )


def _projects_and_chunks(conn: Any) -> None:
    stamp = _stored(EPOCH)
    conn.executemany(
        "INSERT OR IGNORE INTO projects (name, description, created_at) VALUES (?, '', ?)",
        [(name, stamp) for name in PROJECTS],
    )
    for document in range(1, DOCUMENTS + 1):
        conn.execute(
            "INSERT INTO documents (id, project, uri, title, content_hash, size_bytes, "
            "created_at, updated_at) VALUES (?, 'atlas', ?, '', ?, 1000, ?, ?)",
            (document, f"doc-{document}.md", f"{document:064d}", stamp, stamp),
        )
        conn.executemany(
            "INSERT INTO source_chunks (document_id, project, ordinal, heading, content, "
            "created_at) VALUES (?, 'atlas', ?, '', ?, ?)",
            [
                (document, ordinal, f"Chunk {ordinal} of document {document}.", stamp)
                for ordinal in range(CHUNKS_PER_DOCUMENT)
            ],
        )
