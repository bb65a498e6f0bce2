"""How finely a folder's file system tells two writes a moment apart by their modification
times.

The witness is cached by its file's inode, modification time and size (``Witness.peek``). That
is only sound where a rewrite always changes the time. Linux gives fine-grained times (6.13
and later, on ext4, xfs, btrfs and tmpfs) to a file whose times were read since its last change,
as the witness's are on every write. Elsewhere a time is the clock tick's (older kernels: 1-10
ms, and a clock that can fall a few ticks behind on a busy virtual machine), or a whole second
or two (ext4 with small inodes, FAT, some network file systems), and two writes within one such
step leave the same time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# How long after its modification time a known version may still have been rewritten with the
# same time, by what the probe saw: times to the tick (a tick is 1-10 ms; a coarse clock
# updated late by up to five ticks is kept up by the kernel), or to the second (FAT keeps two).
TICK_WINDOW_NS = 100_000_000
SECONDS_WINDOW_NS = 3_000_000_000
_TRIALS = 3


def racy_window_ns(folder: Path, stem: str) -> int:
    """0 where two writes to one file, its times read after each (``fstat``), always get
    different modification times in ``folder``; otherwise how long after its modification time
    a version may have been rewritten without its time changing. Probed on a scratch file
    ``stem.<pid>.mtimes.tmp``, removed after (the witness's sweep removes one a killed process
    left). A folder that cannot be probed is taken as the coarsest."""
    probe = folder / f"{stem}.{os.getpid()}.mtimes.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return SECONDS_WINDOW_NS
    seen: list[int] = []
    try:
        for _ in range(_TRIALS):
            os.pwrite(fd, b"1", 0)
            first = os.fstat(fd).st_mtime_ns
            os.pwrite(fd, b"2", 0)
            second = os.fstat(fd).st_mtime_ns
            seen += [first, second]
            if first == second:
                break  # coarse: one trial may straddle a step, not all three
        else:
            return 0
    except OSError:
        return SECONDS_WINDOW_NS
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
    whole_seconds = all(time_ns % 1_000_000_000 == 0 for time_ns in seen)
    return SECONDS_WINDOW_NS if whole_seconds else TICK_WINDOW_NS
