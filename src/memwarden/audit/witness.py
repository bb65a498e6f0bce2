"""The head witness: how far the chain has reached, kept in a file outside the database.

A database file put back from an older copy, or a chain cut short, ends below the witness.
The witness is advanced before a mutation is acknowledged to its caller: the new head is
written to a temporary file before the commit (``prepare``: a witness that cannot be written
is known before anything is committed, so strict mode can refuse) and renamed over the witness
right after it (``publish``). So every acknowledged row is witnessed, and cutting it from the
chain is caught by the next write or the next verify. Several processes may share the file: it
only ever moves forward, under a file lock.

A failed witness write is reported to ``fault_hooks`` (the critical alert, ``/health``) and
its end to ``recovery_hooks``; no temporary file outlives a failure.

Besides the head, the file keeps a short trail of the last heads it recorded, so that when a
chain was rolled back and rewritten, verify can say where it parted from what was witnessed.
The ledger never advances a witness its chain does not descend from (see ``Ledger``), and a
witness file that has gone missing is never silently re-created: only ``reset`` writes one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import structlog

from memwarden.audit.batching import Rounds
from memwarden.audit.fileswap import alive, exchange
from memwarden.audit.head import Head as Head  # re-exported: where the chain code looks for it
from memwarden.audit.mtimes import racy_window_ns
from memwarden.audit.witness_format import (
    TrailText,
    body,
    lock_path,
    next_trail,
    parse,
    steady_bytes,
)
from memwarden.audit.witness_format import (
    WitnessRecord as WitnessRecord,  # re-exported: where the chain code looks for it
)
from memwarden.errors import LedgerError
from memwarden.private_files import private_dir

log = structlog.get_logger(__name__)

TEMP_SUFFIX = ".tmp"
SPARE_SUFFIX = ".spare"

# (path, error, the head that could not be witnessed): a witness write failed.
FaultHook = Callable[[Path, OSError, "Head"], None]
# (path): a witness write succeeded after failures.
RecoveryHook = Callable[[Path], None]


class WitnessWriteError(OSError):
    """The witness could not be written (read-only folder, disk full, permissions)."""


@dataclass(frozen=True)
class Prepared:
    """A new head written to the spare file, the witness file lock held until it is put in
    place (``publish``) or dropped (``discard``)."""

    head: Head
    lock_fd: int


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of the witness file from another without reading it."""
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class _Known(NamedTuple):
    """A version of the witness file known without reading it again: its stamp, its record,
    and when it was known (``time.time_ns``): see ``Witness._racy``."""

    stamp: tuple[int, int, int]
    record: WitnessRecord
    at_ns: int


class Witness:
    def __init__(self, path: Path, database_id: str, key_id: str) -> None:
        self.path = path
        self.database_id = database_id
        self.key_id = key_id
        self.fault_hooks: list[FaultHook] = []
        self.recovery_hooks: list[RecoveryHook] = []
        # The witness's previous version, rewritten in place with the next head and swapped
        # with the witness atomically. Rewriting a file in place, rather than renaming a new
        # file over the witness, keeps ext4 from flushing data on every rename (~40 µs a
        # commit, not ~1 ms).
        self.spare = path.with_name(path.name + SPARE_SUFFIX)
        self._lock_path = lock_path(path)
        # The paths as the system calls take them, encoded once: every commit stats the
        # witness twice and swaps it with the spare, and a Path is converted anew on each call.
        self._path_os = os.fsencode(path)
        self._spare_os = os.fsencode(self.spare)
        self._lock_fd: int | None = None
        self._mutex = threading.Lock()
        self.failing_since: Head | None = None  # the first head a failed write left unwitnessed
        self._failing = threading.Lock()
        self._peeked: _Known | None = None
        # The record prepared in the spare, under the file lock, by its stamp: once the spare
        # is swapped in, a peek that finds that stamp knows the record without reading it (a
        # peek by another thread between the swap and ``publish``'s end re-read and parsed it).
        self._pending: _Known | None = None
        # How long after its modification time a known version may have been rewritten by
        # another process without its stamp changing: 0 where the file system gives every
        # write a time of its own (``audit.mtimes``). Asked once, under the lock, by the first
        # write that finds a version it knows.
        self._racy_ns: int | None = None
        self._trail_text = TrailText()
        self._rounds: Rounds[Head] = Rounds()  # concurrent ``advance`` calls, merged

    # -- reading -------------------------------------------------------------------------
    def read(self) -> WitnessRecord:
        if not self.path.exists():
            raise LedgerError(
                f"the ledger witness {self.path} is missing: if this database really was moved "
                "here, verify it against an anchor you kept (`memwarden audit verify --anchor "
                "SEQ:TAG`) and then run `memwarden audit reset-witness --yes --anchor SEQ:TAG`"
            )
        data = steady_bytes(self.path)
        try:
            return parse(json.loads(data.decode("utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LedgerError(f"the ledger witness {self.path} is unreadable: {exc}") from exc

    def peek(self, *, settled: bool = False) -> WitnessRecord | None:
        """The witness as it is now, or None when it is missing or unreadable.

        Cheap enough for every append: the file is parsed again only when it was replaced.
        ``settled`` (under the file lock, before a write): a version known too soon after its
        modification time to rule out a rewrite with the same stamp is read again."""
        known_at = time.time_ns()
        try:
            stat = os.stat(self._path_os)
        except OSError:
            return None
        stamp = _stamp(stat)
        for known in (self._peeked, self._pending):
            if known is not None and known.stamp == stamp:
                if not (settled and self._racy(known)):
                    return known.record
        try:
            record = self.read()
        except (LedgerError, OSError):
            return None
        self._peeked = _Known(stamp, record, known_at)
        return record

    def _racy(self, known: _Known) -> bool:
        """Whether another process may have rewritten the version ``known`` names since, in
        place and to the same size, within the same clock tick, so that its stamp did not
        change: only where modification times are coarse (the tick's, or the second's), and
        only for a version known less than one such step (with a margin) after it was modified
        (as a repository index's racy entries).
        A write from such a stale record could move the witness back to an older head."""
        if self._racy_ns is None:
            self._racy_ns = racy_window_ns(self.path.parent, self.path.name)
            log.info("ledger_witness_mtimes", path=str(self.path), racy_window_ns=self._racy_ns)
        return known.at_ns - known.stamp[1] < self._racy_ns

    # -- writing -------------------------------------------------------------------------
    def reset(self, head: Head) -> None:
        """Write the witness unconditionally (init, or an operator's explicit reset)."""
        private_dir(self.path.parent)
        fd = self._lock()
        try:
            stamp = self._write_spare(body(self.database_id, self.key_id, head, ()))
            if self.path.exists():
                self._install()
            else:
                os.replace(self.spare, self.path)
            # A swap or a rename keeps the spare's stamp: what was just written need not be
            # read back and parsed by the next peek.
            record = WitnessRecord(self.database_id, self.key_id, head, ())
            self._peeked = _Known(stamp, record, time.time_ns())
        finally:
            self._unlock(fd)

    def prepare(self, head: Head) -> Prepared | None:
        """Before the commit: write the new head to the spare file and hold the witness's
        file lock until ``publish`` or ``discard`` (so the witness cannot move meanwhile).
        None when there is nothing to write: the witness is missing or unreadable (never
        re-created by a commit: only ``reset`` writes one), or already past ``head``.

        Raises ``WitnessWriteError`` when it cannot be written; nothing is left behind."""
        try:
            fd = self._lock()
        except OSError as exc:
            self._failed(exc, head)
            raise WitnessWriteError(exc.errno, f"cannot lock the ledger witness: {exc}") from exc
        try:
            base = self.peek(settled=True)
            if base is None or base.head.seq >= head.seq:
                if base is None:
                    log.error(
                        "ledger_witness_not_advanced",
                        path=str(self.path),
                        seq=head.seq,
                        why="missing or unreadable",
                    )
                self._unlock(fd)
                return None
            trail = next_trail(base, head)
            entries = self._trail_text.entries(trail)
            stamp = self._write_spare(body(self.database_id, self.key_id, head, trail, entries))
            record = WitnessRecord(self.database_id, self.key_id, head, trail)
            self._pending = _Known(stamp, record, time.time_ns())
        except OSError as exc:
            self._unlock(fd)
            self._failed(exc, head)
            raise WitnessWriteError(exc.errno, f"cannot write the ledger witness: {exc}") from exc
        return Prepared(head, fd)

    def publish(self, prepared: Prepared) -> bool:
        """After the commit: put the prepared head in place. Returns False when that failed
        (reported to the fault hooks)."""
        try:
            self._install()
            # The spare's stamp is the witness's now: a swap moves no data and no times.
            pending, self._pending = self._pending, None
            if pending is not None and pending.record.head == prepared.head:
                self._peeked = pending
        except OSError as exc:
            self._pending = None
            self._failed(exc, prepared.head)
            return False
        finally:
            self._unlock(prepared.lock_fd)
        self._recovered()
        return True

    def advance(self, head: Head) -> bool:
        """``prepare`` and ``publish`` at once, for a head already committed (and durable).

        Threads of this process advancing at once share one write (``Rounds``): a round
        writes the newest head of every thread that asked before it began, which satisfies
        them all (each asked only for a head at least that far), and the others take no file
        lock and make no system call. Every head asked for is committed and durable, and all
        are on the one chain, so the file goes through a subset of the heads it would have gone
        through one write each; a failed round leaves each thread to write its own."""
        return self._rounds.run(head, self.advance_newest)

    def advance_newest(self, heads: Sequence[Head]) -> bool:
        """``advance`` to the newest of ``heads`` (all committed and durable) on this thread,
        for a caller that merged them itself."""
        return self._advance(max(heads, key=lambda head: head.seq))

    def _advance(self, head: Head) -> bool:
        try:
            prepared = self.prepare(head)
        except WitnessWriteError:
            return False
        return True if prepared is None else self.publish(prepared)

    def discard(self, prepared: Prepared) -> None:
        """The commit did not happen: the prepared head must never reach the witness."""
        self._pending = None
        self._unlock(prepared.lock_fd)

    def flush(self) -> None:
        """Nothing is ever pending: every head is written before its commit is acknowledged."""

    def close(self) -> None:
        """Nothing to flush (every head is written before its commit is acknowledged); lets
        go of the lock file."""
        with self._mutex:
            fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def sweep(self) -> list[Path]:
        """Remove temporary files that older versions (or processes killed mid-write) left
        beside the witness. Returns what it removed."""
        removed: list[Path] = []
        try:
            candidates = list(self.path.parent.glob(self.path.name + ".*" + TEMP_SUFFIX))
        except OSError:
            return removed
        for candidate in candidates:
            pid_text = candidate.name[len(self.path.name) + 1 :].split(".")[0]
            if pid_text.isdigit() and alive(int(pid_text)):
                continue
            try:
                candidate.unlink()
            except OSError:
                continue
            removed.append(candidate)
        return removed

    def _write_spare(self, body: bytes) -> tuple[int, int, int]:
        """Write ``body`` to the spare; returns the spare's stamp (inode, mtime, size)."""
        spare = self.spare
        try:
            # Never through a symbolic link: one put at the spare's name would have had the
            # next commit write the witness over whatever file it names (as memwarden's user),
            # and the swap then make the witness that link. ELOOP fails the write loudly.
            fd = os.open(spare, os.O_WRONLY | os.O_NOFOLLOW)
            created = False
        except FileNotFoundError:
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
        try:
            try:
                written = os.pwrite(fd, body, 0)
                if written != len(body):
                    raise OSError(errno.ENOSPC, "short write (no space left on device?)")
                os.ftruncate(fd, len(body))
                stat = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError:
            if created:
                with contextlib.suppress(OSError):
                    spare.unlink()  # never leave an empty file behind
            raise
        return _stamp(stat)

    def _install(self) -> None:
        """Put the spare in place as the witness (the old witness becomes the spare)."""
        if exchange(self._spare_os, self._path_os):
            return
        os.replace(self.spare, self.path)

    def note_lag(self, first_unwitnessed: Head) -> None:
        """The witness was found behind the chain (on open): the next write that catches it up
        ends the episode, as after a failed write."""
        with self._failing:
            if self.failing_since is None:
                self.failing_since = first_unwitnessed

    def _failed(self, exc: OSError, head: Head) -> None:
        with self._failing:
            # The lowest: a merged write (``advance``) fails for the newest head of its round
            # first, and then each thread's own write for its own.
            if self.failing_since is None or head.seq < self.failing_since.seq:
                self.failing_since = head
        log.error("ledger_witness_write_failed", path=str(self.path), error=str(exc), seq=head.seq)
        for hook in self.fault_hooks:
            try:
                hook(self.path, exc, head)
            except Exception as hook_error:  # noqa: BLE001 - fail-open: an alert sink must not break the mutation
                log.error("ledger_witness_hook_failed", error=str(hook_error))

    def _recovered(self) -> None:
        if self.failing_since is None:
            return
        with self._failing:
            self.failing_since = None
        log.info("ledger_witness_write_recovered", path=str(self.path))
        for hook in self.recovery_hooks:
            try:
                hook(self.path)
            except Exception as hook_error:  # noqa: BLE001 - fail-open: an alert sink must not break the mutation
                log.error("ledger_witness_hook_failed", error=str(hook_error))

    def _lock(self) -> int:
        """Take the witness's lock; returns the descriptor that holds the file lock.

        A thread lock first (a file lock is shared by every thread of the process), then the
        file lock on a descriptor kept open: read-only is enough for flock, and it does not
        stop the folder from being remounted read-only (the write that follows then fails,
        clearly)."""
        self._mutex.acquire()
        try:
            fd = self._lock_fd
            if fd is None:
                try:
                    fd = os.open(self._lock_path, os.O_RDONLY)
                except FileNotFoundError:
                    # Created, then held read-only: a descriptor open for writing would keep
                    # the folder from being remounted read-only.
                    os.close(os.open(self._lock_path, os.O_WRONLY | os.O_CREAT, 0o600))
                    fd = os.open(self._lock_path, os.O_RDONLY)
                self._lock_fd = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        return fd

    def _unlock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()
