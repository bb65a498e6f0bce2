"""PostgreSQL: the script one append on the tail sends (``audit.tail``), built so that the turn
every other appender of the process waits for does as little as it can.

The script takes the chain lock, inserts the entry only on top of the head it was tagged after,
and commits, in one round trip. Everything in it but the four values that follow from the tail
(``DECIDED``) is escaped into it before the turn is taken (``Script``); in the turn, those four
are checked against the forms memwarden writes them in and put in place.

The insert runs as a statement prepared once per connection (``PREPARE``, then ``EXECUTE``;
named ``memwarden_tail_append_`` and a digest of its text): planned anew each time it cost the
server ~290 µs an append against ~170 µs prepared, all of it inside the chain lock
(docs/scaling.md, session 13). A connection memwarden has not prepared it
on is checked (``pg_prepared_statements``) and prepared before the turn. One that lost it (a
pooler that moves sessions between server connections, a ``DISCARD ALL``) fails the insert,
which the tail treats as a moved head (the ordinary append runs), and is checked again before
its next append. A statement of the same name that is not memwarden's is not used: found
before, the connection's appends send the insert itself; put there afterwards (from inside
memwarden's own session), the script's check that the entry's own row was inserted (its tag,
which names its sequence number, recorded by the insert) fails it, so the COMMIT after it never
runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog
from sqlalchemy import Connection, bindparam, func, insert, literal_column, null, select, true

from memwarden.audit import statements
from memwarden.audit.statements import PLACEHOLDERS, DriverStatement, client_bound_each, libpq_exec
from memwarden.db import schema

if TYPE_CHECKING:
    from memwarden.audit.entries import LedgerEntry

log = structlog.get_logger(__name__)

_ledger = schema.ledger
# A setting of the transaction (``set_config(..., is_local => true)``: gone at its end, and
# rolled back with a savepoint) holding the tag of the entry the insert on the tail wrote.
_WRITTEN_SETTING = "memwarden.tail_entry"
_head = (
    select(_ledger.c.seq, _ledger.c.tag).order_by(_ledger.c.seq.desc()).limit(1).cte("chain_head")
)
# The entry's row, inserted only on top of the head it was tagged after (seq - 1, prev_tag):
# otherwise no row, and then the payload's seq is NULL, which its primary key refuses. So a
# moved head is an error, and the COMMIT after it in the script never runs. The row inserted
# records its tag in a setting of the transaction (``_ENTRY_WRITTEN`` reads it).
_row = (
    insert(_ledger)
    .from_select(
        [c.key for c in _ledger.columns],
        select(*[bindparam(c.key, type_=c.type) for c in _ledger.columns]).where(
            _head.c.seq == bindparam("seq", type_=_ledger.c.seq.type) - 1,
            _head.c.tag == bindparam("prev_tag", type_=_ledger.c.prev_tag.type),
        ),
    )
    .returning(
        _ledger.c.seq,
        func.set_config(literal_column(f"'{_WRITTEN_SETTING}'"), _ledger.c.tag, true()),
    )
    .cte("ledger_row")
)
ENTRY_ON_TAIL = DriverStatement(
    {
        "postgresql": insert(schema.ledger_payloads)
        .inline()
        .values(seq=select(_row.c.seq).scalar_subquery(), body=bindparam("body"), erased_at=null())
    }
)
# The prepared insert's name: this prefix and a digest of its own text (``_prepared``), so a
# statement of that name is memwarden's own, of this version (a pooler may hand a session a
# server connection other clients prepared statements on).
PREPARED = "memwarden_tail_append"
_LISTED = (
    "SELECT name, statement FROM pg_prepared_statements "
    "WHERE starts_with(name, 'memwarden_tail_append_')"
)
# The connection's state, kept with it by the pool: True, prepared; False, cannot be.
_STATE_KEY = "memwarden_tail_prepared"
# The parameters that follow from the tail, bound in the turn, and the forms their values take
# (memwarden's own: a sequence number, tags it computed, a timestamp it formatted); anything
# else sends the append down the ordinary path.
DECIDED = {
    "seq": re.compile(r"[1-9][0-9]{0,18}"),
    "prev_tag": re.compile(r"[0-9a-f]{64}"),
    "tag": re.compile(r"[0-9a-f]{64}"),
    "ts": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"),
}
# Fails (division by zero) unless the insert wrote this entry's own row (its tag, which no other
# entry has: the tag names its sequence number): see ``_prepared``. Read from the transaction's
# setting, not the table: a query on the ledger cost the server ~60 µs more an append, inside
# the chain lock (planning it opens every index of the table).
_ENTRY_WRITTEN = (
    f"SELECT 1 / (coalesce(current_setting('{_WRITTEN_SETTING}', true), '') = %(tag)s)::int"
)
_UNDECIDED = {"seq": 0, "prev_tag": "", "tag": "", "ts": ""}


class Script:
    """The append's script for one entry, every parameter bound but the decided ones."""

    def __init__(
        self, conn: Connection, prefix: str, entry: LedgerEntry, body: str, digest: str
    ) -> None:
        sql, params = ENTRY_ON_TAIL.prepare(conn, [_entry_row(entry, body, digest)])
        self.prepared = prepared_on(conn, sql)
        template = _prepared(sql).execute if self.prepared else sql
        texts, self._names = _split(template)
        pieces = client_bound_each(conn, texts, params[0])
        pieces[0] = f"{prefix}; SET LOCAL synchronous_commit TO off; {pieces[0]}"
        pieces[-1] = f"{pieces[-1]}; COMMIT"
        self._pieces = pieces
        self.sql = sql
        self.params = params

    def forget(self, conn: Connection) -> None:
        """The script failed on ``conn``: a moved head, or the prepared insert is no longer
        there (or no longer memwarden's). The connection is looked at again before its next
        append on the tail: one round trip after a miss."""
        if self.prepared:
            conn.connection.info.pop(_STATE_KEY, None)

    def bound(self, row: Mapping[str, Any], *, flush: bool = False) -> str | None:
        """The script for ``row`` (the entry tagged after the tail, ``Ledger.tagged``); None
        when a decided value is not in its form. ``flush``: the WAL flush after the COMMIT, in
        the same round trip (``statements.WAL_FLUSH``)."""
        parts = [self._pieces[0]]
        for name, piece in zip(self._names, self._pieces[1:], strict=True):
            value = str(row[name])
            if not DECIDED[name].fullmatch(value):
                return None
            parts.append(value if name == "seq" else f"'{value}'")
            parts.append(piece)
        if flush:
            parts.append(f"; {statements.WAL_FLUSH}")  # the module's: one for every path
        return "".join(parts)


def prepared_on(conn: Connection, sql: str) -> bool:
    """Whether the insert is prepared on ``conn``'s connection, preparing it when it is not
    known to be (two round trips, once a connection)."""
    info = conn.connection.info
    state = info.get(_STATE_KEY)
    if state is None:
        state = _prepare(conn, sql)
        info[_STATE_KEY] = state
    return bool(state)


def _prepare(conn: Connection, sql: str) -> bool:
    """Prepare the insert on the connection unless it is there already, inside a savepoint of
    the caller's transaction (which a failure must not end). False, logged, when it cannot be:
    the appends on this connection then send the insert itself."""
    statement = _prepared(sql)
    # PostgreSQL keeps the whole query string the statement came in, savepoint included.
    prepare = f"SAVEPOINT {PREPARED}; {statement.prepare}; RELEASE SAVEPOINT {PREPARED}"
    listed = libpq_exec(conn, _LISTED)
    for row in range(listed.ntuples):
        if bytes(listed.get_value(row, 0) or b"").decode() == statement.name:
            text = bytes(listed.get_value(row, 1) or b"").decode("utf-8", "replace")
            if text == prepare:
                return True
            # Another statement under memwarden's name: left alone, and not used.
            log.warning(
                "ledger_append_not_prepared", error=f"{statement.name} is another statement"
            )
            return False
    try:
        libpq_exec(conn, prepare)
    except conn.dialect.loaded_dbapi.Error as exc:
        libpq_exec(conn, f"ROLLBACK TO SAVEPOINT {PREPARED}; RELEASE SAVEPOINT {PREPARED}")
        log.warning("ledger_append_not_prepared", error=str(exc).splitlines()[0])
        return False
    return True


class _Prepared(NamedTuple):
    name: str
    prepare: str  # the PREPARE statement
    execute: str  # the EXECUTE that runs it, then the check that the entry is there


@cache
def _prepared(sql: str) -> _Prepared:
    """The prepared form of the compiled insert ``sql``, its parameters numbered in order of
    first use."""
    if "%%" in sql:  # a literal % the compiler doubled would stay doubled: there is none
        raise ValueError("the tail's insert holds a literal %")
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    body = PLACEHOLDERS.sub(number, sql)  # no %% in it (above): every match is a parameter
    name = f"{PREPARED}_{hashlib.sha256(body.encode()).hexdigest()[:16]}"
    arguments = ", ".join(f"%({name})s" for name in order)
    # The insert fails by itself when the head moved. A statement of that name that is not
    # this one might not (PostgreSQL even ignores the arguments of one that takes none), and
    # the COMMIT after it would acknowledge an entry that is not there: so the script then asks
    # whether this entry's own row was inserted, and fails when it was not.
    return _Prepared(
        name, f"PREPARE {name} AS {body}", f"EXECUTE {name}({arguments}); {_ENTRY_WRITTEN}"
    )


@cache
def _split(sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``sql`` cut at each of its decided parameters: the texts between them (which hold the
    other parameters) and the decided names, in order."""
    texts: list[str] = []
    names: list[str] = []
    start = 0
    for match in PLACEHOLDERS.finditer(sql):
        if match.group(1) in DECIDED:
            texts.append(sql[start : match.start()])
            names.append(match.group(1))
            start = match.end()
    texts.append(sql[start:])
    return tuple(texts), tuple(names)


def _entry_row(entry: LedgerEntry, body: str, digest: str) -> dict[str, Any]:
    """The entry's row as ``Ledger.tagged`` makes it, but for what the tail decides."""
    return {
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "project": entry.project,
        "action": entry.action,
        "actor": entry.actor,
        "payload_digest": digest,
        "body": body,
        **_UNDECIDED,
    }
