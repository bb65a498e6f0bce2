"""Reading the witness while other writers replace it. A writer rewrites the spare file in
place and swaps it with the witness (``Witness._write_spare``, ``_install``): a reader that
opened the witness just before a swap can read that file while it is rewritten (seen: the new
record followed by the tail of the old one, under eight writer threads). A reader must get a
record some writer wrote, whole, never an "unreadable witness" (a false integrity alarm)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from memwarden.audit.witness import Head, Witness

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
