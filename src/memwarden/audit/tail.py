"""PostgreSQL: appending after the head this process wrote last, without reading it first.

The ordinary append (``Ledger._tag``) sends the chain lock and the head read, waits for the
head, tags the entry after it and sends the insert with the COMMIT: two round trips, with the
client (and, in a threaded server, the interpreter lock) inside the chain lock between them.
Here the entry is tagged before anything is sent, after the head this process appended last
(``Tail``), and one round trip takes the chain lock, inserts the entry only if the chain's head
still is that head (checked by the insert itself, in a snapshot taken once the lock is held) and
commits; a second round trip waits for the WAL flush (the COMMIT is asynchronous, as in
``Ledger._flush``; the same round trip when no other appender of the process waits, below). The
chain lock is then held for the server's own work alone.

Appenders of this process take turns (``Tail._turn``) from reading the tail to the answer to
their COMMIT, so each tags after the one before. Only what depends on the tail is done in the
turn (the tag, and binding the four parameters that follow from it, ``tail_script.Script``): the
entry's other parameters are escaped into the script, and the witness is looked at, before the
turn is taken, since every other appender waits for it. The WAL flush after the COMMIT is waited
for outside the turn (PostgreSQL answers a script only at its end, short of a notice that
flushes its output: a flush in the same round trip would keep the turn through it; reading
the answer early through a notice was measured and not taken, docs/scaling.md, session 16),
unless no other appender waits for the turn: then it follows the COMMIT in the same round
trip. Appenders that committed while another's flush was on its way share the next flush
(``Tail.flushes``, ``audit.batching``), and the witness write that follows it, of the newest
head it made durable. When another process (or a
multi-entry mutation) extended the chain meanwhile, the insert finds another head and fails:
nothing of the attempt is kept (the savepoint is rolled back) and the ordinary append runs in
the same transaction. After such a miss the next appends of this process take the ordinary path
for a while (``_skip``), so writers in several processes do not pay for misses.

What the ordinary append checks under the lock (the chain still holds the witnessed head) is
checked here before the round trip, against heads known to be in the chain without a read: the
tail itself, the heads this process appended in an unbroken run since the ordinary append that
started it (each one inserted only on top of the one before), and the witnessed head the ledger
last confirmed by reading. Any other witness sends the append down the ordinary path, which
reads and raises the alarm when the chain disagrees.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from memwarden.audit import statements
from memwarden.audit.batching import Rounds
from memwarden.audit.chain import GENESIS_TAG
from memwarden.audit.statements import DriverScript, in_failed_transaction, libpq_exec, wrapped
from memwarden.audit.tail_script import Script
from memwarden.audit.witness import Head, Witness

if TYPE_CHECKING:
    from memwarden.audit.entries import LedgerEntry
    from memwarden.audit.ledger import Ledger
    from memwarden.audit.witness import WitnessRecord

log = structlog.get_logger(__name__)

_SEGMENT = 256  # heads of the current unbroken run kept, to recognise a witnessed one
_MAX_SKIP = 64


def _wal_flush(conn: Connection) -> bool:
    """Wait until the WAL is durable past every commit answered before this is sent, on any
    connection of the cluster (WAL is one sequence, flushed in order): one round trip and one
    small server transaction (``statements.WAL_FLUSH``). Appenders that committed while
    another's flush was on its way share the next one (``Rounds``) instead of sending one each:
    fewer round trips, server transactions and interpreter-lock hand-offs per mutation, and the
    server merged their fsyncs anyway."""
    flush = statements.WAL_FLUSH  # the module's: one statement for both paths
    try:
        libpq_exec(conn, flush)
    except conn.dialect.loaded_dbapi.Error as exc:
        flush_error: SQLAlchemyError = wrapped(conn, flush, [], exc)
        raise flush_error from exc
    return True


def _flush_then_witness(conn: Connection, witness: Witness | None, heads: Sequence[Head]) -> bool:
    """A round's work: the WAL flush, then the witness's write (if there is one) of the newest
    head it made durable. A witness write that failed (reported to the witness's fault hooks)
    fails the round: each of the others then flushes and writes its own head, as when the
    witness's own rounds fail (so the fault names the lowest head left unwitnessed)."""
    _wal_flush(conn)
    return witness is None or witness.advance_newest(heads)


class Outcome(Enum):
    DONE = "done"  # appended and committed (flushed)
    WITNESSED = "witnessed"  # DONE, and the witness advanced past it (or its failure reported)
    SKIPPED = "skipped"  # nothing sent: use the ordinary append
    MISSED = "missed"  # sent, the head had moved: roll back to the savepoint, then ordinary


class Tail:
    """The head this process appended last, and the run of heads it appended since it last
    read the head (all in the chain, each on top of the one before)."""

    def __init__(self, prefix: DriverScript) -> None:
        self._turn = threading.Lock()
        self._head: Head | None = None
        self._segment: OrderedDict[int, str] = OrderedDict()
        self._skip = 0
        self._backoff = 0
        self._prefix = prefix  # SAVEPOINT and the chain lock
        # The WAL flushes after the commits of this process's appenders, each followed by the
        # witness's write of the newest head it made durable: merged (see _wal_flush).
        self.flushes: Rounds[Head] = Rounds()
        self.hits = 0
        self.misses = 0
        self._waiting = 0  # appenders of this process waiting for the turn

    def prime(self, head: Head) -> None:
        """After an ordinary append committed ``head`` (checked against the witness): the run
        starts again from it."""
        with self._turn:
            if self._head is None or head.seq > self._head.seq:
                self._head = head
                self._segment = OrderedDict([(head.seq, head.tag)])

    def append(
        self, ledger: Ledger, conn: Connection, entry: LedgerEntry, body: str, digest: str
    ) -> tuple[Outcome, Head | None]:
        script: Script | None = None
        record: WitnessRecord | None = None
        # Read without the turn: hints, checked again in it. No tail (the first append, or
        # after a miss) or a skip: the ordinary path, whose script is not this one.
        if self._skip == 0 and self._head is not None:
            # Before the turn, which every other appender of this process waits for.
            record = ledger.witness.peek() if ledger.witness is not None else None
            try:
                script = Script(conn, self._prefix.sql(conn.dialect), entry, body, digest)
            except conn.dialect.loaded_dbapi.Error as exc:  # the prepared insert's look-up
                failed: SQLAlchemyError = wrapped(conn, "PREPARE", [], exc)
                raise failed from exc
        self._waiting += 1  # a hint (not atomic): only decides where the flush goes
        self._turn.acquire()
        self._waiting -= 1
        flushed = False
        try:
            tail = self._head
            if self._skip > 0:
                self._skip -= 1
                return Outcome.SKIPPED, None
            if script is None or tail is None or not self._known(ledger, tail, record):
                return Outcome.SKIPPED, None
            rows, head = ledger.tagged([entry], [body], [digest], tail.seq, tail.tag)
            # No other appender of this process waits for the turn (one writer, most often):
            # the WAL flush goes in the same round trip, after the COMMIT, which has already
            # let go of the chain lock; only the turn, which nobody wants, is kept through it.
            flushed = self._waiting == 0
            sql = script.bound(rows[0], flush=flushed)
            if sql is None:
                log.warning("ledger_tail_value_unexpected", head=str(head))
                return Outcome.SKIPPED, None
            try:
                libpq_exec(conn, sql)
            except conn.dialect.loaded_dbapi.Error as exc:
                self._settle(None)
                if in_failed_transaction(conn):
                    # A moved head, or a prepared insert the connection lost: looked at again
                    # before this connection's next append on the tail.
                    script.forget(conn)
                    return Outcome.MISSED, None
                error: SQLAlchemyError = wrapped(conn, script.sql, script.params, exc)
                raise error from exc
            # Committed: the next appender of this process may go on top of it, while this
            # one waits for the WAL flush (the server does not answer a script's statements
            # before its end, so a flush in the same round trip would keep the turn).
            self._settle(head)
        finally:
            self._turn.release()
        if flushed:
            return Outcome.DONE, head  # the witness is advanced after the store's commit
        # Asked only now, once the COMMIT was answered: the flush that serves this request is
        # sent after it, so it makes this commit durable too, whichever connection sends it.
        # The round then writes the newest head it made durable to the witness: one round, and
        # one witness write, for both (the witness's own rounds merged fewer: it was written
        # ~0.9 times a mutation under eight writer threads, against ~0.75 flushes).
        witness = ledger.witness
        self.flushes.run(head, lambda heads: _flush_then_witness(conn, witness, heads))
        return (Outcome.DONE if witness is None else Outcome.WITNESSED), head

    def _settle(self, head: Head | None) -> None:
        """Under the turn: the outcome of this process's latest append on the tail."""
        if head is not None:
            self._head = head
            self._segment[head.seq] = head.tag
            while len(self._segment) > _SEGMENT:
                self._segment.popitem(last=False)
            self._backoff = 0
            self.hits += 1
        else:
            self._head = None
            self._segment.clear()
            self._backoff = min(_MAX_SKIP, max(1, self._backoff * 2))
            self._skip = self._backoff
            self.misses += 1

    def _known(self, ledger: Ledger, tail: Head, record: WitnessRecord | None) -> bool:
        """Whether the witness (``record``, as read just before the turn) names a head known
        to be in the chain that ends at ``tail``, without reading the chain; False sends the
        append down the ordinary path."""
        witness = ledger.witness
        if witness is None:
            return True
        if (
            record is None
            or record.database_id != witness.database_id
            or record.key_id != witness.key_id
        ):
            return False
        seen = record.head
        if seen.seq > tail.seq:
            return False
        return (
            self._segment.get(seen.seq) == seen.tag
            or seen == ledger.confirmed
            or (seen.seq == 0 and seen.tag == GENESIS_TAG)
        )
