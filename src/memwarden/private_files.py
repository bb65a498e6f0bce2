"""Files memwarden keeps are private to its user: folders 0700, files 0600, whatever the umask.

Memories, the ledger key, the witness and the alert log are nobody else's business on a shared
machine. A folder or file memwarden creates gets these modes explicitly (``chmod`` after the
create, since the umask can only narrow a mode, and a folder's default is 0777 & ~umask);
folders and files that already exist are left as they are and ``memwarden doctor`` warns when
they are wider (core/doctor/storage.py).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; an existing folder keeps its mode."""
    if path.is_dir():
        return
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 if it does not exist; an existing file keeps its mode."""
    if path.exists():
        return
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def wider_than(path: Path, allowed: int) -> int | None:
    """The mode of ``path`` when it grants more than ``allowed`` (None when not, or missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & ~allowed else None
