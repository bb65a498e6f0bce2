"""The head witness: how far the chain has reached, kept in a file outside the database.

A database file put back from an older copy, or a chain cut short, ends below the witness.
The witness is advanced after each commit; writes are coalesced (at most one every
``interval`` seconds, the rest flushed by a background thread and on close), so the window in
which a freshly committed row is not yet witnessed is at most ``interval`` seconds while the
process lives. Several processes may share the file: it only ever moves forward, under a file lock.

Besides the head, the file keeps a short trail of the last heads it recorded, so that when a
chain was rolled back and rewritten, verify can say where it parted from what was witnessed.
The ledger never advances a witness its chain does not descend from (see ``Ledger``), and a
witness file that has gone missing is never silently re-created: only ``reset`` writes one.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from memwarden.errors import LedgerError

log = structlog.get_logger(__name__)

TRAIL_LENGTH = 64
FLUSHER_IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Head:
    seq: int
    tag: str


@dataclass(frozen=True)
class WitnessRecord:
    database_id: str
    key_id: str
    head: Head
    trail: tuple[Head, ...] = ()

    def heads(self) -> tuple[Head, ...]:
        """Every head this record vouches for, oldest first, the current head last."""
        older = tuple(h for h in self.trail if h.seq < self.head.seq)
        return (*older, self.head)


def _parse(data: Any) -> WitnessRecord:
    trail = tuple(Head(int(seq), str(tag)) for seq, tag in data.get("trail", ()))
    return WitnessRecord(
        database_id=str(data["database_id"]),
        key_id=str(data["key_id"]),
        head=Head(int(data["seq"]), str(data["tag"])),
        trail=trail,
    )


class Witness:
    def __init__(self, path: Path, database_id: str, key_id: str, interval: float = 0.05) -> None:
        self.path = path
        self.database_id = database_id
        self.key_id = key_id
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: Head | None = None
        self._last_write = 0.0
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._peeked: tuple[tuple[int, int, int], WitnessRecord] | None = None

    # -- reading -------------------------------------------------------------------------
    def read(self) -> WitnessRecord:
        if not self.path.exists():
            raise LedgerError(
                f"the ledger witness {self.path} is missing: if this database really was moved "
                "here, verify it against an anchor you kept (`memwarden audit verify --anchor "
                "SEQ:TAG`) and then run `memwarden audit reset-witness --yes --anchor SEQ:TAG`"
            )
        try:
            return _parse(json.loads(self.path.read_text("utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LedgerError(f"the ledger witness {self.path} is unreadable: {exc}") from exc

    def peek(self) -> WitnessRecord | None:
        """The witness as it is now, or None when it is missing or unreadable.

        Cheap enough for every append: the file is parsed again only when it was replaced."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._peeked
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            record = self.read()
        except LedgerError:
            return None
        self._peeked = (stamp, record)
        return record

    # -- writing -------------------------------------------------------------------------
    def reset(self, head: Head) -> None:
        """Write the witness unconditionally (init, or an operator's explicit reset)."""
        with self._file_lock():
            self._write(head, ())

    def advance(self, head: Head) -> None:
        with self._lock:
            idle = self._pending is None
            if self._pending is None or head.seq > self._pending.seq:
                self._pending = head
            due = time.monotonic() - self._last_write >= self.interval
            if not due and not self._closed:
                # The flusher writes it when the window has passed, unless a commit does first.
                flusher = self._flusher
                if flusher is None or not flusher.is_alive():
                    self._start_flusher()
                elif idle:
                    self._wake.notify()
                return
        # While commits keep coming, the committing thread writes the witness itself once the
        # window is due: the flusher is only for when they stop (a flush on another thread
        # would fight this one for the GIL at every system call).
        self.flush()

    def _start_flusher(self) -> None:
        """One long-lived thread rather than a timer per window: starting a thread waits
        until it runs, which on a busy machine costs a commit more than its own write."""
        flusher = threading.Thread(
            target=self._flush_when_due, name="memwarden-witness", daemon=True
        )
        self._flusher = flusher
        flusher.start()

    def _flush_when_due(self) -> None:
        """The flusher: writes a pending head once its window has passed; ends after a while
        with nothing to write (the next commit starts another)."""
        with self._lock:
            while not self._closed:
                if self._pending is None:
                    if not self._wake.wait(FLUSHER_IDLE_SECONDS) and self._pending is None:
                        break
                    continue
                remaining = self._last_write + self.interval - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                self._lock.release()
                try:
                    self.flush()
                finally:
                    self._lock.acquire()
            if self._flusher is threading.current_thread():
                self._flusher = None

    def flush(self) -> None:
        with self._lock:
            head, self._pending = self._pending, None
            self._last_write = time.monotonic()
        if head is None:
            return
        try:
            with self._file_lock():
                current = self._read_current()
                if current is None:
                    # Never re-create a witness that went missing (or became unreadable): that
                    # would bless whatever the database holds now. Only a reset writes one.
                    log.error(
                        "ledger_witness_not_advanced",
                        path=str(self.path),
                        seq=head.seq,
                        why="missing or unreadable",
                    )
                    return
                if head.seq > current.head.seq:
                    self._write(head, current.heads())
        except OSError as exc:
            # Fail-open: the mutation has committed; a stale witness only narrows detection,
            # and verify reports any disagreement.
            log.error("ledger_witness_write_failed", path=str(self.path), error=str(exc))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=5)
        self.flush()

    def _read_current(self) -> WitnessRecord | None:
        try:
            return self.peek()  # parsed again only when the file was replaced
        except OSError:
            return None

    def _write(self, head: Head, older: tuple[Head, ...]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trail = [h for h in older if 0 <= h.seq < head.seq][-(TRAIL_LENGTH - 1) :]
        body = json.dumps(
            {
                "database_id": self.database_id,
                "key_id": self.key_id,
                "seq": head.seq,
                "tag": head.tag,
                "trail": [[h.seq, h.tag] for h in trail],
            }
        )
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
        os.replace(temporary, self.path)
        # peek() runs on every append: what was just written (under the file lock) need not
        # be read back and parsed.
        stat = os.stat(self.path)
        self._peeked = (
            (stat.st_ino, stat.st_mtime_ns, stat.st_size),
            WitnessRecord(self.database_id, self.key_id, head, tuple(trail)),
        )

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
