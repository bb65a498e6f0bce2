"""A large, healthy memwarden database for the integrity bench, written straight into SQLite.

Memories across a few projects and types, a tenth citing source chunks, some superseded, and a
genuine ledger: every memory's rows (created; promoted, superseded or rejected) with payloads
holding the same snapshots as its current row and tags computed with the database's own key,
so ``verify`` and the replay check real data end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bench._corpus import EPOCH
from bench._harness import raw_sqlite_connect as _connect
from memwarden.audit.chain import ChainKey, canonical_json, format_ts, header_bytes
from memwarden.audit.rowmac import RowMacs
from memwarden.audit.witness import Head
from memwarden.core.text import content_hash

PROJECTS = ("atlas", "borealis", "cygnus", "draco")
TYPES = ("knowledge", "project", "preference")
DOCUMENTS = 100
CHUNKS_PER_DOCUMENT = 100
BATCH = 20_000
ACTOR = "bench"
WORDS = (
    "engine valve pad orbit telemetry fuel crew window launch range booster stage tank "
    "sensor camera antenna battery radio thermal schedule review"
).split()

MEMORY_INSERT = (
    "INSERT INTO memories (id, project, type, content, content_hash, confidence, status, "
    "source_chunk_id, reinforcement_count, superseded_by, created_at, updated_at, "
    "last_reinforced_at, mac) VALUES (?, ?, ?, ?, ?, 0.6, ?, ?, 0, ?, ?, ?, NULL, ?)"
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
    def __init__(self, conn: Any, key: ChainKey, head: Head) -> None:
        self.conn, self.key = conn, key
        self.seq, self.prev = head.seq, head.tag
        self.rows: list[tuple[Any, ...]] = []
        self.payloads: list[tuple[Any, ...]] = []

    def append(
        self, memory_id: int, project: str, action: str, moment: datetime, body: str
    ) -> None:
        self.seq += 1
        digest = self.key.payload_digest(body)
        ts = format_ts(moment)
        tag = self.key.tag(
            header_bytes(
                self.seq, "memory", str(memory_id), project, action, ACTOR, ts, digest, self.prev
            )
        )
        self.rows.append(
            (self.seq, str(memory_id), project, action, ACTOR, ts, digest, self.prev, tag)
        )
        self.payloads.append((self.seq, body))
        self.prev = tag

    def flush(self) -> None:
        self.conn.executemany(LEDGER_INSERT, self.rows)
        self.conn.executemany(PAYLOAD_INSERT, self.payloads)
        self.rows.clear()
        self.payloads.clear()


def generate(
    path: str, key: ChainKey, head: Head, memories: int, advance: Callable[[int], None]
) -> int:
    """Write ``memories`` memories and their ledger after ``head``; returns the ledger rows."""
    conn = _connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("BEGIN")
    _projects_and_chunks(conn)
    chain = _Chain(conn, key, head)
    macs = RowMacs(key)  # each row signed as memwarden's writer signs it
    rows: list[tuple[Any, ...]] = []
    for memory_id in range(1, memories + 1):
        project = PROJECTS[memory_id % len(PROJECTS)]
        type_ = TYPES[memory_id % len(TYPES)]
        status, actions = _plan(memory_id)
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
            "status": "candidate" if actions[1:] != ["superseded"] else "active",
            "source_chunk_id": chunk,
            "reinforcement_count": 0,
            "superseded_by": None,
            "created_at": created.isoformat(),
            "updated_at": created.isoformat(),
            "last_reinforced_at": None,
        }
        before = "null"
        moment = created
        for step, action in enumerate(actions):
            extra = ""
            if step:
                moment = created + timedelta(microseconds=step)
                snapshot["status"] = status
                snapshot["updated_at"] = moment.isoformat()
                if action == "superseded":
                    snapshot["superseded_by"] = successor
                    extra = f',"extra":{{"successor":{successor}}}'
            after = canonical_json(snapshot)
            chain.append(
                memory_id,
                project,
                action,
                moment,
                '{"after":' + after + ',"before":' + before + extra + ',"note":null}',
            )
            before = after
        rows.append(
            (
                memory_id,
                project,
                type_,
                text,
                snapshot["content_hash"],
                status,
                chunk,
                successor,
                _stored(created),
                _stored(moment),
                macs.mac(
                    "memory",
                    (
                        memory_id,
                        project,
                        type_,
                        text,
                        snapshot["content_hash"],
                        0.6,
                        status,
                        chunk,
                        0,
                        successor,
                        created,
                        moment,
                        None,
                    ),
                ),  # fmt: skip
            )
        )
        if len(rows) >= BATCH:
            conn.executemany(MEMORY_INSERT, rows)
            chain.flush()
            advance(len(rows))
            rows.clear()
    conn.executemany(MEMORY_INSERT, rows)
    chain.flush()
    advance(len(rows))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return chain.seq - head.seq


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
