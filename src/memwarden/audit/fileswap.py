"""Two file-system helpers of the witness: swapping two files atomically, and whether the
process that left a file behind is still alive."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path
from typing import Any

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc: Any = None


def exchange(first: Path | bytes, second: Path | bytes) -> bool:
    """Swap two files atomically (``renameat2(RENAME_EXCHANGE)``). False when the system
    cannot (not Linux, an old kernel, a file system without it): the caller then renames.
    Paths already encoded (``os.fsencode``) are passed as they are."""
    global _libc  # loaded once, on first use
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2  # noqa: B018 - probe: AttributeError when libc lacks it
        except (OSError, AttributeError):
            _libc = False
    if _libc is False:
        return False
    done = _libc.renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if done == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # never ENOENT: a witness that went missing is not re-created
    raise OSError(error, os.strerror(error), os.fsdecode(second))


def alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
