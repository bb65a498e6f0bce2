"""The local sinks: the structured log and the alerts file (JSON lines, size-rotated).

Each line of the file is one JSON object written with ASCII escapes, so no newline, control
character or Unicode line separator inside an alert can ever forge a second line. A line is
written with one ``write`` on a file opened for appending, so lines from many threads and
processes never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import structlog

from memwarden.private_files import private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

log = structlog.get_logger("memwarden.alerts")

LEVELS = {"info": "info", "warning": "warning", "critical": "critical"}


def log_record(event: str, record: dict[str, Any]) -> None:
    """The structured-log sink: always on."""
    level = LEVELS.get(str(record.get("severity")), "warning")
    fields = {k: v for k, v in record.items() if k != "event"}
    getattr(log, level)(event, **fields)


class FileSink:
    """Appends one JSON line per record to ``path``; rotates at ``max_bytes``.

    A line costs one ``write`` on a descriptor opened for appending (atomic between processes
    on a local file system). The size is tracked in memory and checked against the file every
    ``RESYNC`` lines, which is also when a rotation by another process is noticed; rotating
    takes an exclusive ``flock`` so two processes never rotate the same file twice."""

    RESYNC = 64

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ino: int | None = None
        self._size = 0
        self._since_sync = 0

    @staticmethod
    def line(record: dict[str, Any]) -> bytes:
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)
        return text.encode("ascii") + b"\n"

    def write(self, record: dict[str, Any]) -> None:
        data = self.line(record)
        with self._lock:
            fd = self._current()
            self._since_sync += 1
            if self._since_sync >= self.RESYNC or self._size + len(data) > self.max_bytes:
                fd = self._resync()
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                fd = self._rotate_locked(fd, len(data))
            _write_all(fd, data)
            self._size += len(data)

    def _current(self) -> int:
        if self._fd is not None:
            return self._fd
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        info = os.fstat(fd)
        self._fd, self._ino, self._size, self._since_sync = fd, info.st_ino, info.st_size, 0
        return fd

    def _resync(self) -> int:
        """Reopen if the file was moved away (rotated elsewhere); refresh the size."""
        if self._moved():
            self._close()
            return self._current()
        assert self._fd is not None
        self._size, self._since_sync = os.fstat(self._fd).st_size, 0
        return self._fd

    def _moved(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def _rotate_locked(self, fd: int, incoming: int) -> int:
        _flock(fd, True)
        try:
            # Another process may have rotated while we waited for the lock: check again.
            if not self._moved() and os.fstat(fd).st_size + incoming > self.max_bytes:
                self._rotate()
        finally:
            _flock(fd, False)
        self._close()
        return self._current()

    def _rotate(self) -> None:
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd, self._ino = None, None

    def close(self) -> None:
        with self._lock:
            self._close()


def _flock(fd: int, lock: bool) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX if lock else fcntl.LOCK_UN)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
