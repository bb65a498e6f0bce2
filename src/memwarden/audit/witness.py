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
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from memwarden.errors import LedgerError

log = structlog.get_logger(__name__)

TRAIL_LENGTH = 64
TEMP_SUFFIX = ".tmp"

# (path, error, the head that could not be witnessed): a witness write failed.
FaultHook = Callable[[Path, OSError, "Head"], None]
# (path): a witness write succeeded after failures.
RecoveryHook = Callable[[Path], None]


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


class WitnessWriteError(OSError):
    """The witness could not be written (read-only folder, disk full, permissions)."""


@dataclass(frozen=True)
class Prepared:
    """A new head written to a temporary file beside the witness, not yet in place."""

    head: Head
    temporary: Path
    base: WitnessRecord  # the witness the trail was built from


def _body(database_id: str, key_id: str, head: Head, trail: tuple[Head, ...]) -> bytes:
    return json.dumps(
        {
            "database_id": database_id,
            "key_id": key_id,
            "seq": head.seq,
            "tag": head.tag,
            "trail": [[h.seq, h.tag] for h in trail],
        }
    ).encode()


def _trail(base: WitnessRecord, head: Head) -> tuple[Head, ...]:
    return tuple(h for h in base.heads() if 0 <= h.seq < head.seq)[-(TRAIL_LENGTH - 1) :]


class Witness:
    def __init__(self, path: Path, database_id: str, key_id: str) -> None:
        self.path = path
        self.database_id = database_id
        self.key_id = key_id
        self.fault_hooks: list[FaultHook] = []
        self.recovery_hooks: list[RecoveryHook] = []
        self.failing_since: Head | None = None  # the first head a failed write left unwitnessed
        self._failing = threading.Lock()
        self._peeked: tuple[tuple[int, int, int], WitnessRecord] | None = None

    # -- reading -------------------------------------------------------------------------
    def read(self) -> WitnessRecord:
        if not self.path.exists():
            raise LedgerError(
                f"the ledger witness {self.path} is missing: if this database really was moved "
                "here, verify it against an anchor you kept (`memwarden audit verify --anchor "
                "SEQ:TAG`) and then run `memwarden audit reset-witness --anchor SEQ:TAG`"
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
        except (LedgerError, OSError):
            return None
        self._peeked = (stamp, record)
        return record

    # -- writing -------------------------------------------------------------------------
    def reset(self, head: Head) -> None:
        """Write the witness unconditionally (init, or an operator's explicit reset)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        base = WitnessRecord(self.database_id, self.key_id, head)
        with self._file_lock():
            self._replace(self._write_temporary(_body(self.database_id, self.key_id, head, ())))
        self._remember(head, base, ())

    def prepare(self, head: Head) -> Prepared | None:
        """Before the commit: write the new head beside the witness. None when the witness
        is missing or unreadable (never re-created by a commit: only ``reset`` writes one).

        Raises ``WitnessWriteError`` when it cannot be written; nothing is left behind."""
        base = self.peek()
        if base is None:
            log.error(
                "ledger_witness_not_advanced",
                path=str(self.path),
                seq=head.seq,
                why="missing or unreadable",
            )
            return None
        try:
            temporary = self._write_temporary(
                _body(self.database_id, self.key_id, head, _trail(base, head))
            )
        except OSError as exc:
            self._failed(exc, head)
            raise WitnessWriteError(exc.errno, f"cannot write the ledger witness: {exc}") from exc
        return Prepared(head, temporary, base)

    def publish(self, prepared: Prepared) -> bool:
        """After the commit: put the prepared head in place, unless the witness has moved
        past it already (another process). Returns False when the write failed (reported to
        the fault hooks; the temporary file is gone either way)."""
        head = prepared.head
        try:
            with self._file_lock():
                current = self.peek()
                if current is None:
                    log.error(
                        "ledger_witness_not_advanced",
                        path=str(self.path),
                        seq=head.seq,
                        why="missing or unreadable",
                    )
                    self.discard(prepared)
                    return True
                if current.head.seq >= head.seq:
                    self.discard(prepared)
                    self._recovered()
                    return True
                temporary, trail = prepared.temporary, _trail(prepared.base, head)
                if current is not prepared.base and current != prepared.base:
                    # Another process moved the witness since: keep its heads in the trail.
                    self.discard(prepared)
                    trail = _trail(current, head)
                    temporary = self._write_temporary(
                        _body(self.database_id, self.key_id, head, trail)
                    )
                self._replace(temporary)
            self._remember(head, prepared.base, trail)
        except OSError as exc:
            self.discard(prepared)
            self._failed(exc, head)
            return False
        self._recovered()
        return True

    def advance(self, head: Head) -> bool:
        """``prepare`` and ``publish`` at once, for a head already committed."""
        try:
            prepared = self.prepare(head)
        except WitnessWriteError:
            return False
        return True if prepared is None else self.publish(prepared)

    def discard(self, prepared: Prepared) -> None:
        """The commit did not happen (or the witness is already past it): drop the file."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(prepared.temporary)

    def flush(self) -> None:
        """Nothing is ever pending: every head is written before its commit is acknowledged."""

    def close(self) -> None:
        """Nothing to flush; kept so that closing a store reads as it always did."""

    def sweep(self) -> list[Path]:
        """Remove temporary files left by processes that are gone (killed between writing a
        head and putting it in place). Returns what it removed."""
        removed: list[Path] = []
        try:
            candidates = list(self.path.parent.glob(self.path.name + ".*" + TEMP_SUFFIX))
        except OSError:
            return removed
        for candidate in candidates:
            pid_text = candidate.name[len(self.path.name) + 1 :].split(".")[0]
            if pid_text.isdigit() and _alive(int(pid_text)):
                continue
            try:
                candidate.unlink()
            except OSError:
                continue
            removed.append(candidate)
        return removed

    def _write_temporary(self, body: bytes) -> Path:
        # One name per process and thread: several writers may prepare at once.
        temporary = self.path.with_name(
            f"{self.path.name}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}"
        )
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                written = os.write(fd, body)
            finally:
                os.close(fd)
            if written != len(body):
                raise OSError(28, "short write (no space left on device?)", str(temporary))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return temporary

    def _replace(self, temporary: Path) -> None:
        try:
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _remember(self, head: Head, base: WitnessRecord, trail: tuple[Head, ...]) -> None:
        """peek() runs on every append: what was just written (under the file lock) need not
        be read back and parsed."""
        try:
            stat = os.stat(self.path)
        except OSError:
            self._peeked = None
            return
        self._peeked = (
            (stat.st_ino, stat.st_mtime_ns, stat.st_size),
            WitnessRecord(self.database_id, self.key_id, head, trail),
        )

    def note_lag(self, first_unwitnessed: Head) -> None:
        """The witness was found behind the chain (on open): the next write that catches it up
        ends the episode, as after a failed write."""
        with self._failing:
            if self.failing_since is None:
                self.failing_since = first_unwitnessed

    def _failed(self, exc: OSError, head: Head) -> None:
        with self._failing:
            if self.failing_since is None:
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

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Read-only is enough for flock, and an existing lock file then opens even in a
        # folder that became read-only (the write that follows fails, clearly, instead).
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
