"""Which of several server processes runs the once-per-store background work.

``memwarden serve --workers N`` starts N processes over one store. Work that must run once,
not N times (the scheduler's nightly run, operation log sweep and checkpoint cadence; the
start-up sweep that writes missing vectors), runs in the process that holds an exclusive,
non-blocking ``flock`` on a file in the store's data folder. The kernel drops the lock when
its holder dies, so the next worker to ask takes over: no stale leader after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

import structlog

from memwarden.private_files import private_dir

log = structlog.get_logger(__name__)

LOCK_NAME = "serve.leader.lock"


class Leader:
    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def held(self) -> bool:
        """Whether this process leads; tries to take the lock when it does not yet (cheap:
        one system call). Once held, kept until ``release`` or the process ends."""
        with self._mutex:
            if self._fd is not None:
                return True
            try:
                private_dir(self.path.parent)
                fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600)
            except OSError as exc:
                log.error("serve_leader_lock_unavailable", path=str(self.path), error=str(exc))
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # another worker leads
                return False
            self._fd = fd
            log.info("serve_leader_elected", pid=os.getpid())
            return True

    def release(self) -> None:
        with self._mutex:
            fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
