"""Vectors written after commit, off the caller's thread, and the sweeps that find what is
missing or stale.

A committed memory is queued here by its event; a thread embeds the queue in batches and writes
the vectors in a transaction of their own. A process that stops before its queue drained leaves
vectors missing: ``missing`` finds them (the integrity scan reports them; ``index rebuild``,
``integrity check --fix`` and the server's start-up sweep write them).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Select, and_, delete, exists, or_, select

from memwarden.core import vectors
from memwarden.core.embedding import Embedders, EmbedderUnavailable
from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.errors import ClosedError

log = structlog.get_logger(__name__)

M, C, E = schema.memories, schema.source_chunks, schema.embeddings
BATCH = 64
# How long ``close`` waits for the thread to finish its batch once told to stop: the local
# model's batch (64 texts, ~1 s here) must end before the process may exit (``close``). An
# endpoint's call cannot abort the process, and one that trickles bytes is never cut off by
# httpx's per-read timeout: it gets the short wait it always had.
LOCAL_STOP_WAIT_S = 20.0
REMOTE_STOP_WAIT_S = 2.0
ERASED = "erased"
DOCUMENT = "document"  # a queue item standing for every chunk of a document
_SYNC = -1  # a queue item asking for a sweep of missing and stale vectors

Item = tuple[int, str, str, str]  # id, project, content hash, text to embed


def chunk_text(heading: str, content: str) -> str:
    return f"{heading}\n{content}" if heading else content


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_items(conn: Connection, kind: str, ids: list[int]) -> list[Item]:
    if kind == vectors.MEMORY:
        rows = conn.execute(
            select(M.c.id, M.c.project, M.c.content_hash, M.c.content).where(
                M.c.id.in_(ids), M.c.status != ERASED
            )
        )
        return [(int(r.id), r.project, r.content_hash, r.content) for r in rows]
    rows = conn.execute(
        select(C.c.id, C.c.project, C.c.heading, C.c.content).where(C.c.id.in_(ids))
    )
    items = []
    for r in rows:
        text = chunk_text(r.heading or "", r.content)
        items.append((int(r.id), r.project, _digest(text), text))
    return items


def missing(conn: Connection, kind: str, model: str, limit: int | None = None) -> list[int]:
    """Items with no vector for ``model``, or (memories) one of content that changed since."""
    return sorted(int(i) for i in conn.execute(missing_query(kind, model, limit)).scalars())


def missing_query(kind: str, model: str, limit: int | None = None) -> Select[Any]:
    """The items (with their content hash, for memories) less the vectors stored for them.

    A set difference: both sides are read once whatever the planner believes. As a join
    (outer, anti or per-item subquery), PostgreSQL with statistics taken before 100k vectors
    were written expected a handful of vectors and compared every memory with every vector:
    more than ten minutes for ``limit=1``."""
    held = (E.c.kind == kind, E.c.model == model)
    if kind == vectors.MEMORY:
        items = select(M.c.id, M.c.content_hash).where(M.c.status != ERASED)
        difference = items.except_(select(E.c.item_id, E.c.content_hash).where(*held))
    else:
        difference = select(C.c.id).except_(select(E.c.item_id).where(*held))
    rest = difference.subquery()
    query = select(rest.c.id)
    return query.limit(limit) if limit is not None else query


def orphans(conn: Connection) -> int:
    """Vectors whose memory is erased or gone, or whose chunk is gone."""
    gone_memory = and_(
        E.c.kind == vectors.MEMORY,
        ~exists().where(M.c.id == E.c.item_id, M.c.status != ERASED),
    )
    gone_chunk = and_(E.c.kind == vectors.CHUNK, ~exists().where(C.c.id == E.c.item_id))
    return len(conn.execute(select(E.c.id).where(or_(gone_memory, gone_chunk))).all())


def delete_orphans(conn: Connection) -> int:
    gone_memory = and_(
        E.c.kind == vectors.MEMORY,
        ~exists().where(M.c.id == E.c.item_id, M.c.status != ERASED),
    )
    gone_chunk = and_(E.c.kind == vectors.CHUNK, ~exists().where(C.c.id == E.c.item_id))
    removed = int(conn.execute(delete(E).where(or_(gone_memory, gone_chunk))).rowcount or 0)
    if removed:
        vectors.bump(conn)
    return removed


def embed_items(store: Store, embedders: Embedders, kind: str, ids: list[int]) -> int:
    """Embed and store these items' vectors (skipping those already current); how many were
    written. Raises ``EmbedderUnavailable`` when the embedder cannot run."""
    if not ids:
        return 0
    embedder = embedders.get()
    with store.read() as conn:
        items = load_items(conn, kind, ids)
        current = {
            (int(r.item_id), r.content_hash)
            for r in conn.execute(
                select(E.c.item_id, E.c.content_hash).where(
                    E.c.kind == kind, E.c.model == embedder.model_id, E.c.item_id.in_(ids)
                )
            )
        }
    todo = [item for item in items if (item[0], item[2]) not in current]
    if not todo:
        return 0
    matrix = embedders.embed([item[3] for item in todo])
    rows = [
        vectors.StoredVector(item_id, project, digest, matrix[i])
        for i, (item_id, project, digest, _) in enumerate(todo)
    ]
    return store_vectors(store, kind, embedder.model_id, rows)


def store_vectors(store: Store, kind: str, model: str, rows: list[vectors.StoredVector]) -> int:
    """Write the vectors whose item still holds the content they were made from. The items'
    rows are locked first (an erasure locks the memory too), so a vector embedded just before
    an erasure or an edit committed is never written after it."""
    if not rows:
        return 0
    ids = [row.item_id for row in rows]
    with store.write() as unit:
        if kind == vectors.MEMORY:
            current = {
                int(r.id): r.content_hash
                for r in unit.conn.execute(
                    select(M.c.id, M.c.content_hash)
                    .where(M.c.id.in_(ids), M.c.status != ERASED)
                    .with_for_update()
                )
            }
            keep = [row for row in rows if current.get(row.item_id) == row.content_hash]
        else:
            present = set(
                unit.conn.execute(select(C.c.id).where(C.c.id.in_(ids)).with_for_update()).scalars()
            )
            keep = [row for row in rows if row.item_id in present]
        vectors.write(unit.conn, kind, model, keep, datetime.now(UTC))
    return len(keep)


# How much lower than the process this thread runs (Linux "nice" steps). Embedding is the
# heaviest work of a process and nobody waits on it; the creates and recalls whose vectors it
# writes are waited on. Measured with bench/recall_hybrid.py (creates acknowledged per second
# with the embedder on, against off).
NICE = 10


def _yield_cpu() -> None:
    """Lower this thread's priority, where the system has per-thread priorities (Linux: a
    thread is a task of its own). Elsewhere, or when refused, it runs at the process's."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError) as exc:
        log.info("embed_thread_priority_unchanged", reason=str(exc))


def sweep(
    store: Store,
    embedders: Embedders,
    progress: Callable[[int, int], None] | None = None,
    *,
    kinds: Iterable[str] = (vectors.MEMORY, vectors.CHUNK),
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Write every missing or stale vector and drop orphans; how many were written. Stops
    between batches once ``stopping`` says so (what is left, the next sweep finds)."""
    model = embedders.model_id
    if model is None:
        raise EmbedderUnavailable("no embedder is configured (MEMWARDEN_EMBEDDER=none)")
    with store.read() as conn:
        todo = [(kind, i) for kind in kinds for i in missing(conn, kind, model)]
    with store.write() as unit:
        delete_orphans(unit.conn)
    written = 0
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), BATCH):
        if stopping():
            break
        batch = todo[start : start + BATCH]
        for kind in {k for k, _ in batch}:
            written += embed_items(store, embedders, kind, [i for k, i in batch if k == kind])
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    return written


class EmbedWorker:
    """One thread per open store: embeds what this process committed, in batches."""

    def __init__(self, store: Store, embedders: Embedders) -> None:
        self.store = store
        self.embedders = embedders
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        # Set by ``close`` once the drain's time is up: the thread stops between batches.
        self._stopping = threading.Event()
        self._pending = 0
        self._idle = threading.Condition()
        self.written = 0
        self.failed = 0

    def enqueue(self, kind: str, item_id: int) -> bool:
        """Queue an item for the thread; False once closed (its vector is then written by the
        sweep of the next open: ``request_sweep`` at a server's start, or ``rebuild_index``)."""
        if not self.embedders.configured:
            return True
        with self._start_lock:
            if self._closed:
                return False
            with self._idle:
                self._pending += 1
            self._queue.put((kind, item_id))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="memwarden-embed", daemon=True
                )
                self._thread.start()
        return True

    def request_sweep(self) -> None:
        if not self.enqueue(vectors.MEMORY, _SYNC):
            raise ClosedError()

    def wait(self, timeout: float = 30.0) -> bool:
        """True once everything queued so far is written (or given up on)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Drain for up to ``timeout`` seconds, then stop and wait for the thread to end;
        what is left is found by a sweep. Nothing is queued after this (``enqueue``).

        The thread is stopped between batches, and waited for: one left running an ONNX
        inference when the interpreter exits is made to quit inside onnxruntime's C++ code,
        which aborts the process (SIGABRT, exit status 134, after a command had reported
        success). A batch is at most ``BATCH`` texts."""
        with self._start_lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self.wait(timeout)
        self._stopping.set()
        self._queue.put(None)
        local = self.embedders.settings.embedder == "local"
        bound = LOCAL_STOP_WAIT_S if local else REMOTE_STOP_WAIT_S
        thread.join(timeout=bound)
        if thread.is_alive():
            log.warning("embed_thread_still_running", waited_s=bound)

    def _run(self) -> None:
        _yield_cpu()
        while True:
            first = self._queue.get()
            if first is None:
                return
            if self._stopping.is_set():
                self._drop([first])
                continue
            batch = [first]
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                self._process(batch)
            except EmbedderUnavailable as exc:
                self.failed += len(batch)
                log.warning("embed_batch_skipped", reason=str(exc), items=len(batch))
            except ClosedError:  # closed under a batch the close's bound outran: the sweep's
                self.failed += len(batch)
                log.info("embed_batch_not_written", reason="memwarden was closed", items=len(batch))
            except Exception:  # fail-open: the mutations committed; a sweep heals this
                self.failed += len(batch)
                log.exception("embed_batch_failed", items=len(batch))
            finally:
                self._settled(len(batch))

    def _drop(self, batch: list[tuple[str, int]]) -> None:
        """Items left when the worker stopped: counted, their vectors left to a sweep."""
        self.failed += len(batch)
        self._settled(len(batch))

    def _settled(self, count: int) -> None:
        """``count`` queued items are done with (written, failed or dropped): ``wait`` sees."""
        with self._idle:
            self._pending -= count
            self._idle.notify_all()

    def _process(self, batch: list[tuple[str, int]]) -> None:
        if any(item_id == _SYNC for _, item_id in batch):
            self.written += sweep(self.store, self.embedders, stopping=self._stopping.is_set)
        documents = sorted({i for k, i in batch if k == DOCUMENT})
        if documents:
            with self.store.read() as conn:
                chunk_ids = [
                    int(i)
                    for i in conn.execute(
                        select(C.c.id).where(C.c.document_id.in_(documents))
                    ).scalars()
                ]
            batch = batch + [(vectors.CHUNK, i) for i in chunk_ids]
        for kind in (vectors.MEMORY, vectors.CHUNK):
            ids = sorted({i for k, i in batch if k == kind and i != _SYNC})
            # A document stands for all its chunks: embedded a batch at a time, so a stop
            # waits for one batch, not the whole document.
            for start in range(0, len(ids), BATCH):
                if self._stopping.is_set():
                    self.failed += len(ids) - start  # left to the next sweep
                    break
                part = ids[start : start + BATCH]
                self.written += embed_items(self.store, self.embedders, kind, part)
