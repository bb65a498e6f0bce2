"""A large, healthy memwarden database for the integrity bench, written straight into SQLite.

Memories across a few projects and types, a tenth citing source chunks, some superseded, and a
genuine ledger: every memory's rows (created; promoted, superseded or rejected) with payloads
holding the same snapshots as its current row and tags computed with the database's own key,
so ``verify`` and the replay check real data end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from bench._corpus import EPOCH
from bench._harness import raw_sqlite_connect as _connect
from memwarden import Memwarden
from memwarden.audit.chain import ChainKey, canonical_json, format_ts, header_bytes
from memwarden.audit.rowmac import RowMacs
from memwarden.audit.witness import Head
from memwarden.core.text import content_hash

PROJECTS = ("atlas", "borealis", "cygnus", "draco")
TYPES = ("knowledge", "project", "preference")
DOCUMENTS = 100
CHUNKS_PER_DOCUMENT = 100
BATCH = 20_000
# Ten writers, each a tenth of the ledger: "what did this agent do lately" has real work to do.
ACTORS = tuple(f"agent-{n}" for n in range(10))
WORDS = (
    "engine valve pad orbit telemetry fuel crew window launch range booster stage tank "
    "sensor camera antenna battery radio thermal schedule review"
).split()

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


def _stored(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _plan(index: int) -> tuple[str, list[str]]:
    """A memory's final status and the ledger actions that led there."""
    kind = index % 10
    if kind <= 5:
        return "active", ["created", "promoted"]
    if kind <= 7:
        return "candidate", ["created"]
    if kind == 8:
        return "superseded", ["created", "superseded"]
    return "rejected", ["created", "rejected"]


class _Chain:
    def __init__(self, key: ChainKey, head: Head) -> None:
        self.key = key
        self.seq, self.prev = head.seq, head.tag
        self.rows: list[tuple[Any, ...]] = []
        self.payloads: list[tuple[Any, ...]] = []

    def append(
        self, memory_id: int, project: str, action: str, moment: datetime, body: str
    ) -> None:
        self.seq += 1
        digest = self.key.payload_digest(body)
        ts = format_ts(moment)
        actor = ACTORS[memory_id % len(ACTORS)]
        tag = self.key.tag(
            header_bytes(
                self.seq, "memory", str(memory_id), project, action, actor, ts, digest, self.prev
            )
        )
        self.rows.append(
            (self.seq, str(memory_id), project, action, actor, ts, digest, self.prev, tag)
        )
        self.payloads.append((self.seq, body))
        self.prev = tag

    def take(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows, payloads = self.rows, self.payloads
        self.rows, self.payloads = [], []
        return rows, payloads


def _memories(
    key: ChainKey, head: Head, memories: int, ledger_rows: int | None
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Each memory's row (times as aware datetimes) with its ledger and payload rows, chained
    after ``head`` with memwarden's own canonical encoding, tags and row MAC. ``ledger_rows``:
    about how many ledger rows in all; the rows beyond each memory's life story are
    reinforcements of active memories (each a real ``reinforced`` step: count, times)."""
    chain = _Chain(key, head)
    macs = RowMacs(key)  # each row signed as memwarden's writer signs it
    active = sum(1 for i in range(1, memories + 1) if i % 10 <= 5)
    base = sum(len(_plan(i)[1]) for i in range(1, memories + 1))
    per_active = max(0.0, ((ledger_rows or 0) - base) / active) if active else 0.0
    active_seen = 0
    for memory_id in range(1, memories + 1):
        project = PROJECTS[memory_id % len(PROJECTS)]
        type_ = TYPES[memory_id % len(TYPES)]
        status, actions = _plan(memory_id)
        if status == "active":
            # Spread the extra rows evenly: round((j+1)k) - round(jk) sums to round(n k).
            extra = round((active_seen + 1) * per_active) - round(active_seen * per_active)
            actions = actions + ["reinforced"] * extra
            active_seen += 1
        text = (
            f"The {WORDS[memory_id % len(WORDS)]} {WORDS[(memory_id // 7) % len(WORDS)]} "
            f"note number {memory_id} says the {WORDS[(memory_id // 3) % len(WORDS)]} is ready"
        )
        chunk = (
            (memory_id // 10) % (DOCUMENTS * CHUNKS_PER_DOCUMENT) + 1
            if memory_id % 10 == 3
            else None
        )
        successor = memory_id + 2 if status == "superseded" else None  # an active memory
        created = EPOCH + timedelta(milliseconds=memory_id)
        snapshot: dict[str, Any] = {
            "id": memory_id,
            "project": project,
            "type": type_,
            "content": text,
            "content_hash": content_hash(text),
            "confidence": 0.6,
            "status": "candidate" if actions[1:2] != ["superseded"] else "active",
            "source_chunk_id": chunk,
            "reinforcement_count": 0,
            "superseded_by": None,
            "created_at": created.isoformat(),
            "updated_at": created.isoformat(),
            "last_reinforced_at": None,
        }
        before = "null"
        moment = created
        reinforced: datetime | None = None
        for step, action in enumerate(actions):
            extra_text = ""
            if step:
                moment = created + timedelta(microseconds=step)
                snapshot["status"] = status
                snapshot["updated_at"] = moment.isoformat()
                if action == "superseded":
                    snapshot["superseded_by"] = successor
                    extra_text = f',"extra":{{"successor":{successor}}}'
                elif action == "reinforced":
                    reinforced = moment
                    snapshot["reinforcement_count"] += 1
                    snapshot["last_reinforced_at"] = moment.isoformat()
            after = canonical_json(snapshot)
            chain.append(
                memory_id,
                project,
                action,
                moment,
                '{"after":' + after + ',"before":' + before + extra_text + ',"note":null}',
            )
            before = after
        count = snapshot["reinforcement_count"]
        fields = (
            memory_id, project, type_, text, snapshot["content_hash"], 0.6, status, chunk,
            count, successor, created, moment, reinforced,
        )  # fmt: skip
        row = (*fields, macs.mac("memory", fields))
        yield (row, *chain.take())


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
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("BEGIN")
    _projects_and_chunks(conn)
    rows: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    payloads: list[tuple[Any, ...]] = []
    written = 0

    def flush() -> None:
        conn.executemany(MEMORY_INSERT, rows)
        conn.executemany(LEDGER_INSERT, ledger)
        conn.executemany(PAYLOAD_INSERT, payloads)
        advance(len(rows))
        rows.clear()
        ledger.clear()
        payloads.clear()

    for row, chain_rows, chain_payloads in _memories(key, head, memories, ledger_rows):
        (*fields, mac) = row
        fields[10], fields[11] = _stored(fields[10]), _stored(fields[11])
        fields[12] = None if fields[12] is None else _stored(fields[12])
        rows.append((*fields, mac))
        ledger.extend(chain_rows)
        payloads.extend(chain_payloads)
        written += len(chain_rows)
        if len(rows) >= BATCH:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return written


PG_MEMORY_COLUMNS = (
    "id, project, type, content, content_hash, confidence, status, source_chunk_id, "
    "reinforcement_count, superseded_by, created_at, updated_at, last_reinforced_at, mac"
)
PG_LEDGER_COLUMNS = (
    "seq, entity_type, entity_id, project, action, actor, ts, payload_digest, prev_tag, tag"
)


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
            rows: list[tuple[Any, ...]] = []
            ledger: list[tuple[Any, ...]] = []
            payloads: list[tuple[Any, ...]] = []

            def flush() -> None:
                for statement, batch in (
                    (f"COPY memories ({PG_MEMORY_COLUMNS}) FROM STDIN", rows),
                    (f"COPY ledger ({PG_LEDGER_COLUMNS}) FROM STDIN", ledger),
                    ("COPY ledger_payloads (seq, body) FROM STDIN", payloads),
                ):
                    with cur.copy(statement) as copy:
                        for item in batch:
                            copy.write_row(item)
                advance(len(rows))
                rows.clear()
                ledger.clear()
                payloads.clear()

            for row, chain_rows, chain_payloads in _memories(key, head, memories, ledger_rows):
                rows.append(row)
                ledger.extend((seq, "memory", *rest) for seq, *rest in chain_rows)
                payloads.extend(chain_payloads)
                written += len(chain_rows)
                if len(rows) >= BATCH:
                    flush()
            flush()
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
