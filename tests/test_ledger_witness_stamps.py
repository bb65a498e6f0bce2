"""The witness known by its stamp (inode, modification time, size) without reading it again,
and where that cannot be trusted.

Where a file system keeps modification times to the clock tick (Linux before 6.13, file systems
without its fine-grained times), another process can rewrite the witness in place, to the same
size, within the tick of the version this process knows: the stamp does not change. A write
from that stale record would move the witness back to an older head. This machine's kernel
gives every write a time of its own, so the tests make the stale stamp themselves: a rewrite in
place, to the same size, its modification time put back (``os.utime``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from memwarden.audit import mtimes, witness_format
from memwarden.audit.witness import Head, Witness


def _head(seq: int, salt: str = "") -> Head:
    return Head(seq, hashlib.sha256(f"{seq}{salt}".encode()).hexdigest())


def _published(witness: Witness, head: Head) -> None:
    prepared = witness.prepare(head)
    assert prepared is not None
    assert witness.publish(prepared)


def _rewrite_keeping_the_stamp(path: Path, record: bytes) -> None:
    """What another process's writes within one tick look like from here: the same inode, size
    and modification time, other bytes."""
    before = os.stat(path)
    assert len(record) == before.st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, record, 0)
    finally:
        os.close(fd)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


def _newer_record_of_the_same_size(current: bytes, seq: int) -> tuple[Head, bytes]:
    """A record of head ``seq`` (another process's, further on) exactly as long as ``current``
    (the length of its check sum varies with the tag)."""
    for salt in range(10_000):
        head = _head(seq, str(salt))
        record = witness_format.body("db", "key", head, (_head(1),))
        if len(record) == len(current):
            return head, record
    raise AssertionError("no record of that length")


def _stale_witness(tmp_path: Path) -> tuple[Witness, Path, Head]:
    """A witness this process knows at head 5 (known at its modification time, as right after
    its own write), rewritten meanwhile at head 9 with the stamp of the version it knows."""
    path = tmp_path / "ledger.head"
    witness = Witness(path, "db", "key")
    witness.reset(_head(1))
    _published(witness, _head(5))
    assert witness.peek() is not None and witness.peek().head == _head(5)  # type: ignore[union-attr]
    newer, record = _newer_record_of_the_same_size(path.read_bytes(), 9)
    _rewrite_keeping_the_stamp(path, record)
    _known_at(witness, 0)
    return witness, path, newer


def _known_at(witness: Witness, after_mtime_ns: int) -> None:
    """Say the version the witness knows was known ``after_mtime_ns`` after its modification
    time (a machine that paused the test longer than the window must not change its outcome)."""
    known = witness._peeked
    assert known is not None
    witness._peeked = known._replace(at_ns=known.stamp[1] + after_mtime_ns)


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real_read = Witness.read

    def counted(self: Witness) -> witness_format.WitnessRecord:
        reads.append(1)
        return real_read(self)

    monkeypatch.setattr(Witness, "read", counted)
    return reads


def test_where_times_are_coarse_a_write_reads_a_version_known_within_a_tick_again(
    tmp_path: Path,
) -> None:
    witness, path, newer = _stale_witness(tmp_path)
    witness._racy_ns = mtimes.TICK_WINDOW_NS  # as the probe finds on such a file system
    # Head 7 is behind what the witness now names: nothing is written.
    assert witness.prepare(_head(7)) is None
    assert witness.read().head == newer
    # And a head past it keeps what the other process wrote in its trail.
    _published(witness, _head(12))
    record = witness.read()
    assert record.head == _head(12)
    assert newer in record.trail


def test_where_every_write_has_its_own_time_a_known_version_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp is trusted there: a write reads nothing back (every append writes the
    witness, and a read is some eight system calls and a parse)."""
    path = tmp_path / "ledger.head"
    witness = Witness(path, "db", "key")
    witness.reset(_head(1))
    witness._racy_ns = 0  # as the probe finds on this machine's kernel
    reads = _counting_reads(monkeypatch)
    for seq in range(2, 40):
        _published(witness, _head(seq))
    assert reads == []
    assert witness.read().head == _head(39)


def test_the_file_system_is_asked_once_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []

    def probe(folder: Path, stem: str) -> int:
        asked.append(folder)
        return mtimes.TICK_WINDOW_NS

    monkeypatch.setattr("memwarden.audit.witness.racy_window_ns", probe)
    witness, _, newer = _stale_witness(tmp_path)  # its writes asked, and were told "coarse"
    assert asked == [tmp_path]
    assert witness._racy_ns == mtimes.TICK_WINDOW_NS
    assert witness.prepare(_head(7)) is None  # the stale version is read again
    assert witness.read().head == newer
    assert asked == [tmp_path]


def test_where_times_are_coarse_a_version_known_a_window_after_its_time_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any rewrite after it was known would carry a later time: no read back."""
    path = tmp_path / "ledger.head"
    witness = Witness(path, "db", "key")
    witness.reset(_head(1))
    witness._racy_ns = mtimes.TICK_WINDOW_NS
    _known_at(witness, 2 * mtimes.TICK_WINDOW_NS)
    reads = _counting_reads(monkeypatch)
    _published(witness, _head(2))
    assert reads == []
    # Its own write is known right after its time: the next write under the lock reads it.
    _published(witness, _head(3))
    assert reads == [1]
    assert witness.read().head == _head(3)


def test_the_probe_leaves_no_file_behind(tmp_path: Path) -> None:
    window = mtimes.racy_window_ns(tmp_path, "ledger.head")
    assert window in (0, mtimes.TICK_WINDOW_NS, mtimes.SECONDS_WINDOW_NS)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_the_probe_cannot_write_in_is_taken_as_the_coarsest(tmp_path: Path) -> None:
    assert mtimes.racy_window_ns(tmp_path / "missing", "ledger.head") == mtimes.SECONDS_WINDOW_NS
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert mtimes.racy_window_ns(blocker, "ledger.head") == mtimes.SECONDS_WINDOW_NS
