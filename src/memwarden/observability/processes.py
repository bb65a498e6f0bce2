"""Whether a process of this host is still running, for records that name their process
(the nightly lock's row, a fault episode's alert)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process of this host has ``pid``. Unknown (taken as alive) on Windows, where
    signal 0 is no probe: ``os.kill(pid, 0)`` would send the process a Ctrl-C."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True
