"""The witness file's bytes: how a record is written (JSON built by hand, closed by a check
sum) and how it is read while other writers replace the file (``steady_bytes``)."""

from __future__ import annotations

import fcntl
import functools
import os
import re
import time
import zlib
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from memwarden.audit.head import Head

TRAIL_LENGTH = 64


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


# Reads of the witness before one is taken as it is, should writers keep replacing it: the
# first ones at once, the rest a millisecond apart (a writer may be descheduled mid-write).
_READS_TO_SETTLE = 40
_READS_BEFORE_WAITING = 8
_WAIT_BETWEEN_READS_S = 0.001
# Then one read under the witness's lock, shared, if it can be had within this long.
_LOCKED_READ_WAIT_S = 2.0
LOCK_SUFFIX = ".lock"


def lock_path(witness: Path) -> Path:
    """The file whose ``flock`` every writer of ``witness`` holds, exclusively, from writing the
    spare to swapping it in."""
    return witness.with_name(witness.name + LOCK_SUFFIX)


def steady_bytes(path: Path) -> bytes:
    """The witness file's bytes, as one writer wrote them.

    A writer rewrites the spare in place and swaps it with the witness (``Witness._write_spare``,
    ``_install``), so a reader that opened the witness just before a swap may read a file being
    rewritten: parts of two records, or the new one with the old one's tail after it. Such a
    read is never taken for the witness (an unreadable or disagreeing witness raises the
    integrity alarm). A read is taken when the file read was still the witness once read, and
    its check sum holds (``_whole``); a file without one, or whose sum does not hold (written
    by an older release, or edited by hand), when two reads in a row agree. Under writers that
    keep replacing it, every whole read counts: seeing the same record twice is not needed.

    Reads that never settle (40 of them, the last ones a millisecond apart) end in one read
    under the witness's lock, shared: no writer is then between writing the spare and swapping
    it in, so that read is whole. Without the lock within two seconds (a writer that holds it,
    a lock file that cannot be opened), the last read is returned, and judged."""
    previous: bytes | None = None
    data = b""
    for attempt in range(_READS_TO_SETTLE):
        data, still_the_witness = _read_once(path)
        if still_the_witness:
            if _whole(data) or data == previous:
                return data
        previous = data
        if attempt >= _READS_BEFORE_WAITING:
            time.sleep(_WAIT_BETWEEN_READS_S)  # a writer descheduled in the middle of a write
    locked = _read_locked(path)
    return data if locked is None else locked


def _read_locked(path: Path) -> bytes | None:
    """The witness read under its lock, shared; None when the lock could not be had in time.
    Never blocks: this process may hold the lock itself, on another descriptor (a read inside
    ``Witness.prepare``), and a blocking request would then wait for ever."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except OSError:
        return None
    try:
        deadline = time.monotonic() + _LOCKED_READ_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(_WAIT_BETWEEN_READS_S)
        return _read_once(path)[0]
    except OSError:
        return None
    finally:
        os.close(fd)  # lets go of the lock too


def _read_once(path: Path) -> tuple[bytes, bool]:
    """The bytes of the file ``path`` names, and whether it still names that file after the
    read (else it was swapped away meanwhile, and may have been rewritten as the spare)."""
    with open(path, "rb") as handle:
        data = handle.read()
        inode = os.fstat(handle.fileno()).st_ino
    try:
        return data, os.stat(path).st_ino == inode
    except FileNotFoundError:
        return data, False


_CHECK_KEY = b', "crc32": '
_CHECK_TAIL = re.compile(rb"(\d{1,10})\}")


def _with_check(opening: bytes) -> bytes:
    """The record closed with the CRC-32 of everything before its check: not a seal (anyone
    who can edit the file can recompute it), only what tells a read caught in the middle of a
    rewrite from a record as written."""
    return opening + _CHECK_KEY + str(zlib.crc32(opening)).encode() + b"}"


def _whole(data: bytes) -> bool:
    """Whether the record ends in a check sum, and it holds."""
    at = data.rfind(_CHECK_KEY)
    if at < 0:
        return False
    closing = _CHECK_TAIL.fullmatch(data, at + len(_CHECK_KEY))
    return closing is not None and int(closing[1]) == zlib.crc32(data[:at])


def parse(data: Any) -> WitnessRecord:
    trail = tuple(Head(int(seq), str(tag)) for seq, tag in data.get("trail", ()))
    return WitnessRecord(
        database_id=str(data["database_id"]),
        key_id=str(data["key_id"]),
        head=Head(int(data["seq"]), str(data["tag"])),
        trail=trail,
    )


# json.dumps of a str, without its Python wrapper (the same text: json.dumps encodes a str
# with this function, ensure_ascii being its default).
_json_str = encode_basestring_ascii


@functools.lru_cache(maxsize=8)
def _identity(database_id: str, key_id: str) -> str:
    """The witness body's opening, the same on every write of one witness."""
    return f'{{"database_id": {_json_str(database_id)}, "key_id": {_json_str(key_id)}, '


def body(
    database_id: str, key_id: str, head: Head, trail: tuple[Head, ...], entries: str | None = None
) -> bytes:
    """The witness file's JSON (what ``parse`` reads), built by hand: it is written on every
    commit, and a generic encoder over the trail costs more than the file write. ``entries``:
    the trail's entries already joined (``TrailText``)."""
    if entries is None:
        entries = ",".join([_entry(h.seq, h.tag) for h in trail])
    return _with_check(
        (
            f"{_identity(database_id, key_id)}"
            f'"seq": {int(head.seq)}, "tag": {_json_str(head.tag)}, "trail": [{entries}]'
        ).encode()
    )


@functools.lru_cache(maxsize=4 * TRAIL_LENGTH)
def _entry(seq: int, tag: str) -> str:
    return f"[{int(seq)}, {_json_str(tag)}]"


def next_trail(base: WitnessRecord, head: Head) -> tuple[Head, ...]:
    """The trail of the record that follows ``base`` at ``head``: the heads below it, newest
    last, at most ``TRAIL_LENGTH - 1``."""
    keep = TRAIL_LENGTH - 1
    trail = base.trail
    if base.head.seq < head.seq and (not trail or trail[-1].seq < base.head.seq):
        # What the witness wrote: already in order, below the head.
        return (*trail[-keep + 1 :], base.head) if trail else (base.head,)
    return tuple(h for h in base.heads() if 0 <= h.seq < head.seq)[-keep:]


class TrailText:
    """The trail's JSON entries, carried from one write to the next: consecutive trails share
    all their heads but one at each end, so only the new one is encoded (encoding all 63 cost
    more than the rest of the witness's body). Used under the witness's lock."""

    def __init__(self) -> None:
        self._trail: tuple[Head, ...] = ()
        self._parts: list[str] = []

    def entries(self, trail: tuple[Head, ...]) -> str:
        old, parts = self._trail, self._parts
        # Heads carried over are the same objects: the comparisons stop at identity.
        if trail and len(trail) == len(old) and trail[:-1] == old[1:]:
            parts = [*parts[1:], _entry(trail[-1].seq, trail[-1].tag)]
        elif trail and len(trail) == len(old) + 1 and trail[:-1] == old:
            parts = [*parts, _entry(trail[-1].seq, trail[-1].tag)]
        else:
            parts = [_entry(h.seq, h.tag) for h in trail]
        self._trail, self._parts = trail, parts
        return ",".join(parts)
