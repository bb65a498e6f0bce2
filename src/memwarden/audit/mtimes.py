"""Whether a folder's file system tells two writes a moment apart by their modification times.

The witness is cached by its file's inode, modification time and size (``Witness.peek``). That
is only sound where a rewrite always changes the time. Linux gives fine-grained times (6.13
and later, on ext4, xfs, btrfs and tmpfs) to a file whose times were read since its last change,
as the witness's are on every write; elsewhere (older kernels, other file systems) a time is
the clock tick's, a few milliseconds, and two writes within one tick leave the same time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# How long after its modification a cached version may still be rewritten with the same time,
# where times are the tick's: Linux ticks every 1-10 ms (HZ 1000 to 100); twice that, for
# a clock read just before a tick.
COARSE_WINDOW_NS = 20_000_000
_TRIALS = 3


def distinct_mtimes(folder: Path, stem: str) -> bool:
    """Whether two writes to one file, its times read after each (``fstat``), get different
    modification times in ``folder`` (on a file ``stem.<pid>.mtimes.tmp``, removed after; the
    witness's sweep removes one a killed process left). False when it cannot be told: a
    folder that cannot be written to is taken as coarse."""
    probe = folder / f"{stem}.{os.getpid()}.mtimes.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return False
    try:
        for _ in range(_TRIALS):
            os.pwrite(fd, b"1", 0)
            first = os.fstat(fd).st_mtime_ns
            os.pwrite(fd, b"2", 0)
            if os.fstat(fd).st_mtime_ns == first:
                return False  # coarse: one trial may straddle a tick, not all three
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
