"""Reading the witness while other writers replace it. A writer rewrites the spare file in
place and swaps it with the witness (``Witness._write_spare``, ``_install``): a reader that
opened the witness just before a swap can read that file while it is rewritten (seen: the new
record followed by the tail of the old one, under eight writer threads; and, on a loaded CI
machine, a record whose trail was half one write's and half another's). A reader must get a
record some writer wrote, whole, never an "unreadable witness" nor a trail no writer wrote (a
false integrity alarm)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

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
