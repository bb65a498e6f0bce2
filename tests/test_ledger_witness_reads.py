"""Reading the witness while other writers replace it. A writer rewrites the spare file in
place and swaps it with the witness (``Witness._write_spare``, ``_install``): a reader that
opened the witness just before a swap can read that file while it is rewritten (seen: the new
record followed by the tail of the old one, under eight writer threads; and, on a loaded CI
machine, a record whose trail was half one write's and half another's). A reader must get a
record some writer wrote, whole, never an "unreadable witness" nor a trail no writer wrote (a
false integrity alarm)."""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from memwarden.audit import witness_format
from memwarden.audit.witness import Head, Witness
from memwarden.audit.witness_format import steady_bytes

READ_FOR_S = 2.0


def _head(seq: int) -> Head:
    # A tag tied to its sequence number: a record mixed from two writes has a pair that is not.
    return Head(seq, hashlib.sha256(str(seq).encode()).hexdigest())


def test_a_witness_read_while_writers_replace_it_is_always_one_they_wrote(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.head"
    writer = Witness(path, "db", "key")
    writer.reset(_head(1))
    reader = Witness(path, "db", "key")  # another handle, as another process has
    stop = threading.Event()
    written = [1]

    def write() -> None:
        seq = 1
        while not stop.is_set():
            seq += 1
            writer.advance(_head(seq))
            written.append(seq)

    threads = [threading.Thread(target=write)]
    threads[0].start()
    reads = 0
    try:
        deadline = time.monotonic() + READ_FOR_S
        while time.monotonic() < deadline:
            record = reader.read()
            assert record.head == _head(record.head.seq)
            assert all(head == _head(head.seq) for head in record.trail)
            reads += 1
    finally:
        stop.set()
        threads[0].join()
    assert reads > 100 and len(written) > 100


def _assert_whole(record_head: Head, trail: tuple[Head, ...]) -> None:
    assert record_head == _head(record_head.seq)
    assert [head for head in trail if head != _head(head.seq)] == []
    assert [head.seq for head in trail] == sorted(head.seq for head in trail)


WRITER = textwrap.dedent(
    """
    import hashlib, sys, time
    from pathlib import Path
    from memwarden.audit.witness import Head, Witness

    writer = Witness(Path(sys.argv[1]), "db", "key")
    seq, deadline = 1, time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        seq += 1
        writer.advance(Head(seq, hashlib.sha256(str(seq).encode()).hexdigest()))
    print(seq)
    """
)


def test_a_witness_read_while_another_process_replaces_it_is_always_one_it_wrote(
    tmp_path: Path,
) -> None:
    """The writer in another process, so that reads and writes truly overlap (threads of one
    process take turns on the interpreter lock): a read torn across a page of the file (the
    record is longer than one) has a trail mixed from two writes."""
    path = tmp_path / "ledger.head"
    Witness(path, "db", "key").reset(_head(1))
    reader = Witness(path, "db", "key")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(READ_FOR_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    reads = 0
    try:
        while writer.poll() is None:
            record = reader.read()
            _assert_whole(record.head, record.trail)
            reads += 1
    finally:
        out, _ = writer.communicate(timeout=30)
    assert writer.returncode == 0
    assert reads > 100 and int(out) > 100
    assert len(reader.read().trail) == 63


def test_a_witness_edited_by_hand_is_read_as_it_says(tmp_path: Path) -> None:
    """The check sum tells a torn read from a record as written; it is not a seal. A witness
    written by an older release (no sum) or edited by hand (a sum that no longer holds) is
    read as it stands, and the chain is judged against what it says."""
    path = tmp_path / "ledger.head"
    Witness(path, "db", "key").reset(_head(5))
    edited = json.loads(path.read_bytes())
    edited["seq"], edited["tag"] = 4, _head(4).tag
    path.write_text(json.dumps(edited))  # its old crc32 kept: no longer holds
    assert Witness(path, "db", "key").read().head == _head(4)
    del edited["crc32"]
    path.write_text(json.dumps(edited))
    assert Witness(path, "db", "key").read().head == _head(4)
    assert json.loads(steady_bytes(path)) == edited


def _torn_reads(path: Path, count: int) -> list[bytes]:
    """``count`` reads as a reader caught mid-rewrite gets them: the first part of one record
    and the rest of another, never the same twice in a row."""
    whole = path.read_bytes()
    other = witness_format.body("db", "key", _head(8), ())  # as long: the tags differ
    assert len(other) == len(whole)
    half = len(whole) // 2
    reads = [whole[: half - n % 2] + other[half - n % 2 :] for n in range(count)]
    assert not any(witness_format._whole(read) for read in reads)
    return reads


def test_reads_that_never_settle_end_in_one_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty torn reads (the writers never let a read settle): the last read is taken under
    the witness's lock, shared, and is the record as written, not the fortieth torn one."""
    path = tmp_path / "ledger.head"
    Witness(path, "db", "key").reset(_head(9))
    torn = itertools.cycle(_torn_reads(path, witness_format._READS_TO_SETTLE))
    real = witness_format._read_once
    monkeypatch.setattr(witness_format, "_WAIT_BETWEEN_READS_S", 0.0)
    monkeypatch.setattr(
        witness_format, "_read_once", lambda p: (next(torn), True) if _unlocked(p) else real(p)
    )
    assert steady_bytes(path) == path.read_bytes()
    assert Witness(path, "db", "key").read().head == _head(9)


def test_without_the_lock_in_time_the_last_read_is_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer holds the lock throughout: the last read is returned as it is, after the
    wait, and never blocks for ever (this process may hold the lock itself)."""
    path = tmp_path / "ledger.head"
    Witness(path, "db", "key").reset(_head(9))
    reads = _torn_reads(path, witness_format._READS_TO_SETTLE)
    torn = iter(reads)
    monkeypatch.setattr(witness_format, "_WAIT_BETWEEN_READS_S", 0.0)
    monkeypatch.setattr(witness_format, "_LOCKED_READ_WAIT_S", 0.2)
    monkeypatch.setattr(witness_format, "_read_once", lambda _p: (next(torn), True))
    holder = os.open(witness_format.lock_path(path), os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        assert steady_bytes(path) == reads[-1]
        assert time.monotonic() - started < 5
    finally:
        os.close(holder)


def _unlocked(path: Path) -> bool:
    """Whether the caller reads without the witness's lock (a shared lock held elsewhere
    on the lock file would refuse this exclusive, non-blocking one)."""
    fd = os.open(witness_format.lock_path(path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_peek_between_the_swap_and_the_end_of_publish_knows_the_record_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread's peek just after the swap, before ``publish`` has noted what it put in
    place: the prepared record, known by the spare's stamp, without reading the file. A
    prepared head that is discarded is never taken for the witness."""
    path = tmp_path / "ledger.head"
    witness = Witness(path, "db", "key")
    witness.reset(_head(1))
    reads: list[Path] = []
    real_read = Witness.read
    monkeypatch.setattr(Witness, "read", lambda self: reads.append(self.path) or real_read(self))
    seen: list[object] = []
    real_install = Witness._install

    def install_then_peek(self: Witness) -> None:
        real_install(self)
        seen.append(self.peek())

    monkeypatch.setattr(Witness, "_install", install_then_peek)
    prepared = witness.prepare(_head(2))
    assert prepared is not None and witness.publish(prepared)
    assert [record.head for record in seen] == [_head(2)]  # type: ignore[attr-defined]
    assert reads == []
    dropped = witness.prepare(_head(3))
    assert dropped is not None
    witness.discard(dropped)
    peeked = witness.peek()
    assert peeked is not None and peeked.head == _head(2) and reads == []
    assert Witness(path, "db", "key").read().head == _head(2)
