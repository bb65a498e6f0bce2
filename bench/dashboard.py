"""The dashboard's server-side render time at 100k memories and 1M ledger rows (SQLite, and
PostgreSQL with the same generated rows written through psycopg: names end ``_postgresql``).

The database is generated directly, like ``bench/ledger.py`` does: 100k memories over 20
projects, a genuine 1M-row chain (each tag computed with the database's own key) spread over
the last 30 days, so every bar of the mutations-per-day chart has rows behind it, and one
memory with 1,000 versions scattered through the chain. Timed: ``GET /dashboard/`` and
``GET /dashboard/memory/{id}`` of that memory, in process through the ASGI app (auth, reads,
templates; no network). Baselines, same run: the same overview as JSON (``GET
/admin/dashboard``: what the HTML costs on top), and the same memory's history as JSON
(``GET /memory/{id}/audit``). Target: p95 at most 150 ms each.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from bench._corpus import Vocabulary, sign_memories, statement
from bench._harness import Context, Engine, Result, benchmark, latency_ms
from bench._harness import raw_sqlite_connect as _connect
from memwarden import Memwarden
from memwarden.api import create_app
from memwarden.audit.chain import ChainKey, canonical_json, format_ts, header_bytes
from memwarden.audit.witness import Head
from memwarden.core.text import content_hash

TARGET_MS = 150.0
DEEP_VERSIONS = 1_000
PROJECTS = [f"project-{n:02d}" for n in range(20)]
TYPES = ("knowledge", "project", "preference", "episodic")
BATCH = 50_000
ACTOR = "bench"
LEDGER_INSERT = (
    "INSERT INTO ledger (seq, entity_type, entity_id, project, action, actor, ts, "
    "payload_digest, prev_tag, tag) VALUES (?, 'memory', ?, ?, ?, ?, ?, ?, ?, ?)"
)
PAYLOAD_INSERT = "INSERT INTO ledger_payloads (seq, body, erased_at) VALUES (?, ?, NULL)"
MEMORY_INSERT = (
    "INSERT INTO memories (id, project, type, content, content_hash, confidence, status, "
    "source_chunk_id, reinforcement_count, superseded_by, created_at, updated_at, "
    "last_reinforced_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, ?, ?, ?)"
)


def _stored(iso: str | None) -> str | None:
    """An ISO timestamp as SQLite holds a UTC datetime column (naive, space-separated)."""
    return iso.replace("T", " ").split("+")[0] if iso else None


class _Chain:
    """Appends chained ledger rows straight into the file, continuing after ``head``."""

    def __init__(self, conn: Any, key: ChainKey, head: Head, advance: Any) -> None:
        self.conn, self.key, self.advance = conn, key, advance
        self.seq, self.prev = head.seq, head.tag
        self.rows: list[tuple[Any, ...]] = []
        self.payloads: list[tuple[Any, ...]] = []

    def add(self, snapshot: dict[str, Any], before: str, action: str, moment: datetime) -> str:
        self.seq += 1
        after = canonical_json(snapshot)
        body = '{"after":' + after + ',"before":' + before + ',"note":null}'
        digest = self.key.payload_digest(body)
        ts = format_ts(moment)
        entity, project = str(snapshot["id"]), snapshot["project"]
        header = header_bytes(
            self.seq, "memory", entity, project, action, ACTOR, ts, digest, self.prev
        )
        tag = self.key.tag(header)
        self.rows.append((self.seq, entity, project, action, ACTOR, ts, digest, self.prev, tag))
        self.payloads.append((self.seq, body))
        self.prev = tag
        if len(self.rows) >= BATCH:
            self.flush()
        return after

    def flush(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany(LEDGER_INSERT, self.rows)
        self.conn.executemany(PAYLOAD_INSERT, self.payloads)
        self.conn.execute("COMMIT")
        self.advance(len(self.rows))
        self.rows.clear()
        self.payloads.clear()


def _snapshot(memory_id: int, rng: random.Random, vocab: Vocabulary, iso: str) -> dict[str, Any]:
    text = statement(vocab, rng)
    return {
        "id": memory_id,
        "project": PROJECTS[memory_id % len(PROJECTS)],
        "type": TYPES[memory_id % len(TYPES)],
        "content": text,
        "content_hash": content_hash(text),
        "confidence": 0.6,
        "status": "candidate",
        "source_chunk_id": None,
        "reinforcement_count": 0,
        "superseded_by": None,
        "created_at": iso,
        "updated_at": iso,
        "last_reinforced_at": None,
    }


def _change(snapshot: dict[str, Any], rng: random.Random, vocab: Vocabulary, iso: str) -> str:
    """One realistic move of a memory's life; returns the ledger verb."""
    snapshot["updated_at"] = iso
    if snapshot["status"] == "candidate":
        snapshot["status"] = "active" if rng.random() < 0.85 else "rejected"
        return "promoted" if snapshot["status"] == "active" else "rejected"
    if snapshot["status"] == "rejected" or rng.random() < 0.6:
        snapshot["reinforcement_count"] += 1
        snapshot["last_reinforced_at"] = iso
        return "reinforced"
    if rng.random() < 0.5:
        snapshot["confidence"] = round(rng.uniform(0.3, 1.0), 2)
    else:
        snapshot["content"] = statement(vocab, rng)
        snapshot["content_hash"] = content_hash(snapshot["content"])
    return "updated"


class _PgWriter:
    """The generator's SQLite statements on PostgreSQL, through psycopg on the store's own
    connection settings (its schema): ``?`` becomes ``%s``, PRAGMAs are dropped, times are
    read in UTC (the generator writes them as SQLite stores them, naive UTC text)."""

    def __init__(self, mw: Memwarden) -> None:
        self.pooled: Any = mw.store.engine.raw_connection()
        self.conn = self.pooled.driver_connection
        self.conn.execute("SET TIME ZONE 'UTC'")

    def execute(self, sql: str, params: Any = ()) -> None:
        command = sql.strip().upper()
        if command.startswith("PRAGMA") or command == "BEGIN":
            return
        if command == "COMMIT":
            self.conn.commit()
            return
        self.conn.execute(sql.replace("?", "%s"), params or None)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), list(rows))

    def close(self) -> None:
        self.conn.commit()
        self.pooled.close()


def _generate(mw: Memwarden, path: str, rows: int, memories: int, seed: int, advance: Any) -> int:
    """``rows`` ledger rows over ``memories`` memories ending now; returns the deep memory's id.
    ``path``: the SQLite file, or "" to write into ``mw``'s PostgreSQL store."""
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    conn: Any = _connect(path, isolation_level=None) if path else _PgWriter(mw)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO projects (name, description, created_at) VALUES (?, '', ?)",
        [(name, _stored(datetime.now(UTC).isoformat())) for name in PROJECTS],
    )
    conn.execute("COMMIT")
    chain = _Chain(conn, mw.ledger.key, mw.anchor(), advance)
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / rows
    snapshots: list[dict[str, Any]] = []
    encoded: list[str] = []
    deep = 1
    deep_every = max(2, rows // DEEP_VERSIONS)
    for index in range(rows):
        moment = start + step * index
        iso = moment.isoformat()
        if not snapshots or (
            len(snapshots) < memories
            and rng.random() < (memories - len(snapshots)) / (rows - index)
        ):
            snapshot = _snapshot(len(snapshots) + 1, rng, vocab, iso)
            snapshots.append(snapshot)
            encoded.append(chain.add(snapshot, "null", "created", moment))
            continue
        memory_id = deep if index % deep_every == 0 else rng.randint(1, len(snapshots))
        snapshot = snapshots[memory_id - 1]
        before = encoded[memory_id - 1]
        action = _change(snapshot, rng, vocab, iso)
        encoded[memory_id - 1] = chain.add(snapshot, before, action, moment)
    chain.flush()
    conn.execute("BEGIN")
    conn.executemany(
        MEMORY_INSERT,
        (
            (
                s["id"], s["project"], s["type"], s["content"], s["content_hash"],
                s["confidence"], s["status"], s["reinforcement_count"],
                _stored(s["created_at"]), _stored(s["updated_at"]),
                _stored(s["last_reinforced_at"]),
            )
            for s in snapshots
        ),
    )  # fmt: skip
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if not path:
        with mw.store.engine.begin() as pg:
            pg.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('memories', 'id'), "
                "(SELECT max(id) FROM memories))"
            )
    return deep


def _measure(ctx: Context, label: str, call: Callable[[], Any]) -> list[float]:
    for _ in range(5):
        call()
    samples = []
    count = ctx.size(200, 50)
    with ctx.progress(label, count) as advance:
        for _ in range(count):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
            advance(1)
    return samples


def _get(client: TestClient, path: str) -> Callable[[], Any]:
    def call() -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")

    return call


def _result(name: str, ours: list[float], base: list[float], label: str, rows: int) -> Result:
    stats, base_stats = latency_ms(ours), latency_ms(base)
    return Result(
        name,
        stats["p95_ms"],
        "ms",
        "sqlite",
        rows,
        baseline=base_stats["p95_ms"],
        baseline_label=label,
        floor=TARGET_MS,
        floor_on="value",
        better="lower",
        detail={**stats, "samples": len(ours)},
    )


@benchmark(
    "dashboard",
    "dashboard overview and 1,000-version memory page render p95 at 100k memories, "
    "1M ledger rows (SQLite, PostgreSQL)",
    order=70,
)
def run(ctx: Context) -> list[Result]:
    results = _engine(ctx, "sqlite")
    if ctx.pg_url is None:
        results.append(ctx.skipped_pg("dashboard_overview_p95_postgresql", "ms"))
    else:
        results.extend(_engine(ctx, "postgresql"))
    return results


def _engine(ctx: Context, engine: Engine) -> list[Result]:
    rows = ctx.size(1_000_000, 20_000)
    memories = rows // 10
    with ctx.memwarden(engine, f"dashboard-{engine}") as mw:
        path = mw.store.engine.url.database if engine == "sqlite" else ""
        assert path is not None
        with ctx.progress(f"generating {rows:,} ledger rows", rows) as advance:
            deep = _generate(mw, path, rows, memories, ctx.seed, advance)
        sign_memories(mw)  # row MACs, as memwarden's writer gives them
        mw.reset_witness()
        versions = len(mw.history(deep))
        app = create_app(memwarden=mw)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            overview = _measure(ctx, "overview", _get(client, "/dashboard/"))
            overview_json = _measure(ctx, "overview JSON", _get(client, "/admin/dashboard"))
            page = _measure(ctx, "memory page", _get(client, f"/dashboard/memory/{deep}"))
            audit = _measure(ctx, "memory audit JSON", _get(client, f"/memory/{deep}/audit"))
    first = _result(
        "dashboard_overview_p95_sqlite", overview, overview_json,
        "the same overview as JSON (GET /admin/dashboard)", rows,
    )  # fmt: skip
    first.detail["memories"] = memories
    second = _result(
        "dashboard_memory_page_p95_sqlite", page, audit,
        "the same memory's history as JSON (GET /memory/{id}/audit)", rows,
    )  # fmt: skip
    second.detail["versions"] = versions
    for result in (first, second):  # the helpers name SQLite's results
        result.name = result.name.replace("_sqlite", f"_{engine}")
        result.engine = engine
    return [first, second]
