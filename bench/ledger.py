"""The ledger at 1M rows: ``audit history`` p95 (SQLite), ``audit verify`` rows/s (SQLite and
PostgreSQL).

The chain is generated directly (not through a million mutations): a realistic mix of
creates, promotions, updates and reinforcements over 100k memories, each row's payload the
canonical JSON of real memory snapshots, each tag computed with the database's own key
(``chain.header_bytes`` and ``ChainKey``), so ``verify`` checks a genuine chain end to end.
Baselines, same run: for history, the same rows fetched by raw ``sqlite3`` without decoding;
for verify, SHA-256 alone over each row's bytes (what any chain check must at least do), and
beside it the two HMACs per row alone on one process (the ceiling of a one-core walk).
Verify runs as ``audit verify`` does, on ``MEMWARDEN_VERIFY_WORKERS`` processes (one per core
by default); the rate of the same walk on one process is recorded beside it.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from bench._corpus import EPOCH, Vocabulary, statement
from bench._harness import Context, Result, benchmark, latency_ms
from bench._harness import raw_sqlite_connect as _connect
from memwarden import Memwarden
from memwarden.audit import parallel
from memwarden.audit.chain import ChainKey, canonical_json, format_ts, header_bytes
from memwarden.audit.witness import Head
from memwarden.core.text import content_hash

HISTORY_TARGET_MS = 5.0
VERIFY_FLOOR = 200_000.0
BATCH = 50_000
ACTOR = "bench"
LEDGER_INSERT = (
    "INSERT INTO ledger (seq, entity_type, entity_id, project, action, actor, ts, "
    "payload_digest, prev_tag, tag) VALUES (?, 'memory', ?, 'atlas', ?, ?, ?, ?, ?, ?)"
)
PAYLOAD_INSERT = "INSERT INTO ledger_payloads (seq, body, erased_at) VALUES (?, ?, NULL)"
MEMORY_INSERT = (
    "INSERT INTO memories (id, project, type, content, content_hash, confidence, status, "
    "source_chunk_id, reinforcement_count, superseded_by, created_at, updated_at, "
    "last_reinforced_at) VALUES (?, 'atlas', 'knowledge', ?, ?, 0.6, ?, NULL, ?, NULL, ?, ?, ?)"
)
HISTORY_SQL = (
    "SELECT l.seq, l.entity_type, l.entity_id, l.project, l.action, l.actor, l.ts, p.body, "
    "p.erased_at FROM ledger l LEFT JOIN ledger_payloads p ON p.seq = l.seq "
    "WHERE l.entity_type = 'memory' AND l.entity_id = ? ORDER BY l.seq"
)


def _chain(
    key: ChainKey, head: Head, rows: int, memories: int, seed: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[dict[str, Any]]]]:
    """``rows`` chained ledger rows over ``memories`` memories, continuing the chain after
    ``head``, in batches of (ledger rows, payload rows); the memories' final snapshots come
    with the last batch."""
    rng = random.Random(seed)
    vocab = Vocabulary(20_000, rng)
    snapshots: list[dict[str, Any]] = []
    encoded: list[str] = []
    prev = head.tag
    ledger_rows: list[tuple[Any, ...]] = []
    payload_rows: list[tuple[Any, ...]] = []
    created = 0
    for index in range(1, rows + 1):
        seq = head.seq + index
        moment = EPOCH + timedelta(milliseconds=10 * index)
        iso = moment.isoformat()
        if created < memories and (
            created == 0 or rng.random() < (memories - created) / (rows - index + 1)
        ):
            created += 1
            text = statement(vocab, rng)
            snapshot: dict[str, Any] = {
                "id": created,
                "project": "atlas",
                "type": "knowledge",
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
            snapshots.append(snapshot)
            encoded.append(canonical_json(snapshot))
            memory_id, action, before = created, "created", "null"
        else:
            memory_id = rng.randint(1, created)
            snapshot = snapshots[memory_id - 1]
            before = encoded[memory_id - 1]
            if snapshot["status"] == "candidate":
                action, snapshot["status"] = "promoted", "active"
            elif rng.random() < 0.3:
                action = "updated"
                snapshot["content"] = statement(vocab, rng)
                snapshot["content_hash"] = content_hash(snapshot["content"])
            else:
                action = "reinforced"
                snapshot["reinforcement_count"] += 1
                snapshot["last_reinforced_at"] = iso
            snapshot["updated_at"] = iso
            encoded[memory_id - 1] = canonical_json(snapshot)
        # Canonical JSON of {"after", "before", "note"}: keys already in sorted order.
        body = '{"after":' + encoded[memory_id - 1] + ',"before":' + before + ',"note":null}'
        digest = key.payload_digest(body)
        ts = format_ts(moment)
        tag = key.tag(
            header_bytes(seq, "memory", str(memory_id), "atlas", action, ACTOR, ts, digest, prev)
        )
        ledger_rows.append((seq, str(memory_id), action, ACTOR, ts, digest, prev, tag))
        payload_rows.append((seq, body))
        prev = tag
        if len(ledger_rows) >= BATCH or index == rows:
            yield ledger_rows, payload_rows, snapshots if index == rows else []
            ledger_rows, payload_rows = [], []


def _generate(
    path: str, key: ChainKey, head: Head, rows: int, memories: int, seed: int, advance: Any
) -> None:
    """Write the chain (``_chain``) and its memories straight into the SQLite file."""
    conn = _connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    snapshots: list[dict[str, Any]] = []
    for ledger_rows, payload_rows, final in _chain(key, head, rows, memories, seed):
        conn.execute("BEGIN")
        conn.executemany(LEDGER_INSERT, ledger_rows)
        conn.executemany(PAYLOAD_INSERT, payload_rows)
        conn.execute("COMMIT")
        advance(len(ledger_rows))
        snapshots = final or snapshots
    conn.execute("BEGIN")
    conn.executemany(
        MEMORY_INSERT,
        (
            (
                s["id"],
                s["content"],
                s["content_hash"],
                s["status"],
                s["reinforcement_count"],
                s["created_at"].replace("T", " ").split("+")[0],
                s["updated_at"].replace("T", " ").split("+")[0],
                s["last_reinforced_at"].replace("T", " ").split("+")[0]
                if s["last_reinforced_at"]
                else None,
            )
            for s in snapshots
        ),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _generate_pg(
    mw: Memwarden, head: Head, rows: int, memories: int, seed: int, advance: Any
) -> None:
    """The same chain into a PostgreSQL store's ledger by COPY (verify reads the ledger
    alone; the memories' rows are not written)."""
    with mw.store.engine.begin() as conn:
        driver: Any = conn.connection.dbapi_connection
        with driver.cursor() as cursor:
            for ledger_rows, payload_rows, _final in _chain(
                mw.ledger.key, head, rows, memories, seed
            ):
                with cursor.copy(
                    "COPY ledger (seq, entity_type, entity_id, project, action, actor, ts, "
                    "payload_digest, prev_tag, tag) FROM STDIN"
                ) as copy:
                    for seq, eid, action, actor, ts, digest, prev, tag in ledger_rows:
                        copy.write_row(
                            (seq, "memory", eid, "atlas", action, actor, ts, digest, prev, tag)
                        )
                with cursor.copy("COPY ledger_payloads (seq, body) FROM STDIN") as copy:
                    for row in payload_rows:
                        copy.write_row(row)
                advance(len(ledger_rows))
        conn.exec_driver_sql("ANALYZE ledger")
        conn.exec_driver_sql("ANALYZE ledger_payloads")


def _history(ctx: Context, mw: Memwarden, path: str, memories: int, rows: int) -> Result:
    rng = random.Random(ctx.seed + 7)
    sample = [rng.randint(1, memories) for _ in range(ctx.size(1_000, 300))]
    raw = _connect(path)
    try:
        for memory_id in sample[:20]:
            mw.history(memory_id)
            raw.execute(HISTORY_SQL, (str(memory_id),)).fetchall()
        ours: list[float] = []
        base: list[float] = []
        lengths = 0
        with ctx.progress("audit history", len(sample)) as advance:
            for memory_id in sample:
                started = time.perf_counter()
                lengths += len(mw.history(memory_id))
                ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                raw.execute(HISTORY_SQL, (str(memory_id),)).fetchall()
                base.append(time.perf_counter() - started)
                advance(1)
    finally:
        raw.close()
    stats, base_stats = latency_ms(ours), latency_ms(base)
    return Result(
        "audit_history_p95_sqlite",
        stats["p95_ms"],
        "ms",
        "sqlite",
        rows,
        baseline=base_stats["p95_ms"],
        baseline_label="the same rows fetched by raw sqlite3, not decoded",
        floor=HISTORY_TARGET_MS,
        floor_on="value",
        better="lower",
        detail={**stats, "lookups": len(sample), "mean_history_rows": lengths / len(sample)},
    )


def _sha256_rate(path: str) -> float:
    """Rows per second of SHA-256 alone over each row's header and payload bytes."""
    raw = _connect(path)
    seconds = 0.0
    count = 0
    try:
        cursor = raw.execute(
            "SELECT l.seq, l.entity_type, l.entity_id, l.project, l.action, l.actor, l.ts, "
            "l.payload_digest, l.prev_tag, l.tag, p.body FROM ledger l "
            "LEFT JOIN ledger_payloads p ON p.seq = l.seq ORDER BY l.seq"
        )
        sha256 = hashlib.sha256
        while batch := cursor.fetchmany(BATCH):
            blobs = ["|".join(map(str, row)).encode("utf-8") for row in batch]
            started = time.perf_counter()
            for blob in blobs:
                sha256(blob).digest()
            seconds += time.perf_counter() - started
            count += len(blobs)
    finally:
        raw.close()
    return count / seconds


def _hmac_rate(path: str, key: ChainKey) -> float:
    """Rows per second, on one process, of the two HMACs verify must compute for each row (its
    header and its payload), over bytes already fetched and formatted: the ceiling of a walk
    on one core, with no database read, decoding or check around it."""
    raw = _connect(path)
    raw.text_factory = bytes
    seconds = 0.0
    count = 0
    try:
        cursor = raw.execute(
            "SELECT l.seq, l.entity_type, l.entity_id, l.project, l.action, l.actor, l.ts, "
            "l.payload_digest, l.prev_tag, l.tag, p.body FROM ledger l "
            "LEFT JOIN ledger_payloads p ON p.seq = l.seq ORDER BY l.seq"
        )
        hex_mac = key.hex_mac
        while batch := cursor.fetchmany(BATCH):
            pairs = [
                (b"%d|%b|%b|%b|%b|%b|%b|%b|%b" % (*row[:3], row[3] or b"", *row[4:9]), row[10])
                for row in batch
                if row[10] is not None
            ]
            started = time.perf_counter()
            for header, body in pairs:
                hex_mac(header)
                hex_mac(body)
            seconds += time.perf_counter() - started
            count += len(pairs)
    finally:
        raw.close()
    return count / seconds


def _timed_verify(ctx: Context, mw: Memwarden, rows: int) -> tuple[Any, float, Any, float, int]:
    """``audit verify`` as it runs (on ``MEMWARDEN_VERIFY_WORKERS`` processes), then the same
    walk on one process: (report, seconds, one-process report, seconds, workers)."""
    mw.verify(from_seq=max(1, rows - 1000))  # warm the code path, not the whole cache
    with ctx.progress("audit verify", rows) as advance:
        done = [0]

        def progress(checked: int) -> None:
            advance(checked - done[0])
            done[0] = checked

        started = time.perf_counter()
        report = mw.verify(progress=progress)
        seconds = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the generated chain does not verify: {report.reason}")
    # The same walk on one process, for the record (the value is what `audit verify` gives).
    workers = mw.settings.resolved_verify_workers
    mw.settings = mw.settings.model_copy(update={"verify_workers": 1})
    started = time.perf_counter()
    serial = mw.verify()
    serial_seconds = time.perf_counter() - started
    if not serial.ok:
        raise RuntimeError(f"the generated chain does not verify: {serial.reason}")
    return report, seconds, serial, serial_seconds, workers


def _verify(ctx: Context, mw: Memwarden, path: str, rows: int) -> Result:
    report, seconds, serial, serial_seconds, workers = _timed_verify(ctx, mw, rows)
    return Result(
        "audit_verify_sqlite",
        report.rows_checked / seconds,
        "rows/s",
        "sqlite",
        rows,
        baseline=_sha256_rate(path),
        baseline_label="SHA-256 alone over the same rows' bytes",
        # The target is set at 1M rows, where the walk runs on every core; a quick run's short
        # chain is walked on one process (``audit.parallel.MIN_ROWS``), so it is reported.
        floor=VERIFY_FLOOR if rows >= parallel.MIN_ROWS else None,
        floor_on="value",
        detail={
            "seconds": seconds,
            "rows_checked": report.rows_checked,
            "workers": workers,
            "one_process_rows_per_s": serial.rows_checked / serial_seconds,
            "hmac_ceiling_one_process_rows_per_s": _hmac_rate(path, mw.ledger.key),
        },
    )


def _verify_pg(ctx: Context, rows: int, memories: int) -> Result:
    """The same chain in PostgreSQL, verified there (the database's own work runs in its
    server processes, on the same cores)."""
    with ctx.memwarden("postgresql", "ledger") as mw:
        with ctx.progress(f"generating {rows:,} ledger rows (PostgreSQL)", rows) as advance:
            _generate_pg(mw, mw.anchor(), rows, memories, ctx.seed, advance)
        mw.reset_witness()
        report, seconds, serial, serial_seconds, workers = _timed_verify(ctx, mw, rows)
    return Result(
        "audit_verify_postgresql",
        report.rows_checked / seconds,
        "rows/s",
        "postgresql",
        rows,
        floor=VERIFY_FLOOR if rows >= parallel.MIN_ROWS else None,
        floor_on="value",
        detail={
            "seconds": seconds,
            "rows_checked": report.rows_checked,
            "workers": workers,
            "one_process_rows_per_s": serial.rows_checked / serial_seconds,
        },
    )


@benchmark(
    "ledger",
    "audit history p95 (SQLite) and audit verify rows/s (SQLite, PostgreSQL) at 1M ledger rows",
    order=40,
)
def run(ctx: Context) -> list[Result]:
    rows = ctx.size(1_000_000, 10_000)
    memories = rows // 10
    with ctx.memwarden("sqlite", "ledger") as mw:
        path = mw.store.engine.url.database
        assert path is not None
        with ctx.progress(f"generating {rows:,} ledger rows", rows) as advance:
            _generate(path, mw.ledger.key, mw.anchor(), rows, memories, ctx.seed, advance)
        mw.reset_witness()
        results = [_history(ctx, mw, path, memories, rows), _verify(ctx, mw, path, rows)]
    if ctx.pg_url is None:
        results.append(ctx.skipped_pg("audit_verify_postgresql", "rows/s"))
    else:
        results.append(_verify_pg(ctx, rows, memories))
    return results
