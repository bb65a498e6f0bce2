"""SQLite: the write-ahead log folded into the database file by a thread of its own, not by
whichever writer happens to commit past SQLite's threshold.

SQLite's default (``wal_autocheckpoint``, 1000 pages) makes the commit that crosses the
threshold copy the log into the database file and sync both, in the caller's time: one write
in ~50 stalled for that checkpoint (12 ms on a disk whose sync is slow, against ~0.1 ms for a
plain commit), and on such a disk that was a third of a create's average cost. Here a
``Checkpointer`` runs the same checkpoint, PASSIVE (it never waits for a reader or a writer,
nor makes them wait), on its own connection once enough commits have gone by or a second
after the last one; writers commit without it. The interpreter lock is released while SQLite
copies and syncs.

Writers keep SQLite's own checkpoint as a backstop at ``BACKSTOP_PAGES`` (a log that long
means the thread has fallen behind, or died): the log never grows without bound. A checkpoint
that fails (a full disk, an I/O error) is a storage fault of its own, ``checkpoint``: one
alert per episode, shown in ``/health`` of the process that met it, over only when a
checkpoint succeeds (a write that succeeds does not end it: the log still grows). SQLite's own
checkpoint in a commit failed without a word. A thread that cannot start, or dies of a defect,
is said in the log and replaced at the next commit; meanwhile the backstop bounds the log.
A checkpoint that succeeds but leaves most of the log behind, for a reader's snapshot, for
``HELD_S`` is ``checkpoint_held``, a warning: the log grows until that read ends (neither
these checkpoints nor the backstop can pass a reader).

What this does not change: a commit is as durable as ``synchronous`` says (NORMAL: the log is
synced at each checkpoint, as before; FULL: at every commit), and a process killed at any
point loses nothing committed.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import structlog

from memwarden.db import faults

log = structlog.get_logger(__name__)

# A checkpoint once this many commits have gone by (a create writes ~20 pages of log: ~1000
# pages, SQLite's own threshold), or once the thread has waited ``IDLE_S`` with any commit
# pending.
COMMITS_PER_CHECKPOINT = 50
IDLE_S = 1.0
# The thread ends after this long without a commit (the next commit starts it again).
LINGER_S = 30.0
# Writers' own checkpoint, should the thread fall behind: 16 MB of log at 4 KiB pages.
BACKSTOP_PAGES = 4000
# After a failed checkpoint, the next attempt waits this long (a full disk is not freed in a
# millisecond, and every failure would otherwise be retried at each commit).
RETRY_S = 5.0
# A checkpoint that leaves this many pages of log behind (a reader's snapshot needs them), in
# every run for this long, is the ``checkpoint_held`` fault: twice the backstop, for 5 minutes
# (a full integrity scan of a large file reads for minutes, and says so when it holds the log).
HELD_PAGES = 2 * BACKSTOP_PAGES
HELD_S = 300.0


class Checkpointer:
    """One database file's checkpoints, on a daemon thread started by the first commit it is
    told of (in the process that commits: a forked child starts its own, ``_after_fork``)."""

    def __init__(self, path: Path, module: Any, where: str) -> None:
        self.path = path
        self._module = module
        self._where = where
        self._wake = threading.Event()
        self._commits = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        # Held while a checkpoint runs: the erase's truncating checkpoint takes it too, so the
        # two never meet as "busy" in one process.
        self.lock = threading.Lock()
        self.checkpoints = 0  # run so far (tests read it)
        self.failures = 0
        self.last_error: str | None = None
        self._held_since: float | None = None  # since when checkpoints leave the log behind
        self._held_said = False
        _all.add(self)

    def committed(self) -> None:
        """A write transaction committed (called by the store after each one). Never raises:
        the caller's transaction is committed, and must be answered as such."""
        self._commits += 1
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if self._commits >= COMMITS_PER_CHECKPOINT:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._stopping or (self._thread is not None and self._pid == os.getpid()):
                return
            thread = threading.Thread(
                target=self._run, name="memwarden-sqlite-checkpoint", daemon=True
            )
            try:
                thread.start()
            except RuntimeError as exc:  # no thread to be had (a limit, the interpreter's exit)
                # The writers' own checkpoint (the backstop) still bounds the log; the next
                # commit tries again.
                log.error("sqlite_checkpoint_thread_not_started", error=str(exc))
                return
            self._pid = os.getpid()
            self._thread = thread

    def close(self) -> None:
        """Stop the thread (the last connection's close checkpoints the log anyway)."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _run(self) -> None:
        conn: Any = None
        not_before = 0.0  # after a failure, no attempt before this (monotonic seconds)
        idle_since = time.monotonic()
        try:
            while not self._stopping:
                self._wake.wait(IDLE_S)
                self._wake.clear()
                # A failure, or a log held back, is looked at again with or without commits:
                # the fault must end once the cause is gone, even on a store nobody writes to.
                due = (
                    self._commits > 0 or self.last_error is not None or self._held_since is not None
                )
                if not due and time.monotonic() - idle_since > LINGER_S and self._retire():
                    return
                if self._stopping or not due or time.monotonic() < not_before:
                    continue
                self._commits = 0
                idle_since = time.monotonic()
                if conn is None:
                    conn = self._open()
                if conn is None or not self.run_once(conn):
                    not_before = time.monotonic() + RETRY_S
        except Exception as exc:  # a defect: said, and the next commit starts a new thread
            log.error("sqlite_checkpoint_thread_died", error=repr(exc), exc_info=True)
            with self._start_lock:
                if self._thread is threading.current_thread():
                    self._thread = None
        finally:
            if conn is not None:
                conn.close()

    def _retire(self) -> bool:
        """End the thread after ``LINGER_S`` without work (the next commit starts another):
        no thread, and no connection, is kept for a store nobody writes to, or that was left
        unclosed."""
        with self._start_lock:
            if self._commits > 0:
                return False
            self._thread = None
            return True

    def _open(self) -> Any:
        try:
            conn = self._module.connect(str(self.path), isolation_level=None, timeout=0)
            conn.execute("PRAGMA busy_timeout=0")
        except self._module.Error as exc:
            self._failed(exc)
            return None
        return conn

    def run_once(self, conn: Any) -> bool:
        """One PASSIVE checkpoint on ``conn``; False when it failed (reported as a fault)."""
        try:
            with self.lock:
                _, pages, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except self._module.Error as exc:
            self._failed(exc)
            return False
        self.checkpoints += 1
        if self.last_error is not None:
            self.last_error = None
            log.info("sqlite_checkpoint_recovered", database=self._where)
        faults.healthy((faults.CHECKPOINT,))
        if pages >= 0 and done >= 0:  # -1: it could not start (a writer was busy): no news
            self._note_progress(int(pages) - int(done))
        return True

    def _note_progress(self, behind: int) -> None:
        """A PASSIVE checkpoint copies only the log a reader's snapshot no longer needs: a
        log left behind by every checkpoint for ``HELD_S`` grows until that read ends."""
        if behind < HELD_PAGES:
            if self._held_since is not None:
                self._held_since = None
                self._held_said = False
                log.info("sqlite_checkpoint_caught_up", database=self._where)
                faults.healthy((faults.CHECKPOINT_HELD,))
            return
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        held = now - self._held_since
        if held >= HELD_S:
            if not self._held_said:  # once an episode: the fault counts the repeats
                self._held_said = True
                log.warning(
                    "sqlite_checkpoint_held", database=self._where, pages=behind, seconds=held
                )
            faults.fault(
                faults.CHECKPOINT_HELD,
                f"{behind} pages of log (about {behind * 4 // 1024} MiB) wait for a read that "
                f"has held them for {held:.0f} s",
                self._where,
            )

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("sqlite_checkpoint_failed", database=self._where, error=self.last_error)
        faults.fault(faults.CHECKPOINT, self.last_error, self._where)


_all: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


def _after_fork() -> None:
    # The parent's thread is not in the child, and its locks may have been held at the fork
    # (a checkpoint under way, a thread starting): the child's own, started by its first commit.
    for checkpointer in list(_all):
        checkpointer._wake = threading.Event()
        checkpointer._start_lock = threading.Lock()
        checkpointer.lock = threading.Lock()
        checkpointer._thread = None
        checkpointer._pid = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
