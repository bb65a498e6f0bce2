"""A ledger row's tagged header built by the database, for the verify walk's fast path.

Fetching the nine tagged fields and formatting them in Python cost the walk more per row than
its two HMACs (one driver call per column, one string format per row). Here the database
concatenates them into the header's bytes: the walk receives one value per row in their place.

The fields go in as they are, without JSON escapes, exactly as ``chain.header_bytes`` writes
the canonical header of a row whose fields need none. So a header from here is the canonical
header when it holds no backslash (every JSON escape starts with one); the walk trusts a match
only then, and checks any other row on the reference path, in Python, against its canonical
header (``walk._canonical``). A field with a quote and no backslash gives a header that differs
from the canonical one: its tag does not match here, and the reference path decides.

Types. SQLite keeps whatever a raw edit writes, and a BLOB or a number concatenates to the same
bytes as the text it copies, yet no longer matches the field in a query. On SQLite the header is
therefore NULL unless every searchable field is text (the project text or NULL): a NULL header
sends the row to the reference path, which names the field's type. This test replaces six
``typeof()`` calls with two comparisons a field: text sorts above every number and NULL, and below every
BLOB. PostgreSQL enforces the column types itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, and_, case, cast, func, literal_column, null, or_, tuple_
from sqlalchemy.sql.elements import ColumnElement

from memwarden.db import schema

L = schema.ledger

# The fields the walk searches by (the hex fields are only compared).
_SEARCHED = (L.c.entity_type, L.c.entity_id, L.c.action, L.c.actor, L.c.ts)
# Every tagged field but the project, and the tag: memwarden always writes text there (the
# columns are NOT NULL; only a schema edited behind memwarden's back holds a NULL).
NOT_NULL = (*_SEARCHED, L.c.payload_digest, L.c.prev_tag, L.c.tag)


def _const(text: str) -> ColumnElement[Any]:
    # A fixed piece of the header, written into the statement: no input ever reaches it, and a
    # bound parameter per piece would cost the statement a type to infer on PostgreSQL.
    assert "'" not in text
    return literal_column(f"'{text}'", Text)


def header_sql(dialect: str) -> ColumnElement[Any]:
    """The row's header as ``chain.header_bytes`` would write it with no field escaped (NULL
    on SQLite when a searched field is not text)."""
    project = func.coalesce(_const('"') + L.c.project + _const('"'), _const("null"))
    pieces: list[ColumnElement[Any]] = [
        _const('{"action":"'),
        L.c.action,
        _const('","actor":"'),
        L.c.actor,
        _const('","digest":"'),
        L.c.payload_digest,
        _const('","entity_id":"'),
        L.c.entity_id,
        _const('","entity_type":"'),
        L.c.entity_type,
        _const('","prev":"'),
        L.c.prev_tag,
        _const('","project":'),
        project,
        _const(',"seq":'),
        cast(L.c.seq, Text),
        _const(',"ts":"'),
        L.c.ts,
        _const('"}'),
    ]
    if dialect != "sqlite":
        # One concat() call: measured against the ``||`` chain it replaced, in the walk's own
        # server-side cursor on PostgreSQL 15, the server's CPU a row fell from 4.9-5.2 µs to
        # 3.9-4.8 (docs/scaling.md, session 12). concat() reads NULL as '', which ``||`` did
        # not: the header is NULL when a field is, or the tag (the columns are NOT NULL, so only
        # a schema edited behind memwarden's back holds one), and the reference path decides.
        # PostgreSQL expands the row test into one cheap test a field.
        present = tuple_(*NOT_NULL).is_not(None)
        return case((present, func.concat(*pieces)), else_=null())
    # One concat() call copies each piece once (``||`` copies the growing string at each step).
    # It reads NULL as '', which the type test below rules out for every searched field.
    # Text sorts above every number and NULL and below every BLOB: two plain comparisons a
    # field (cheaper than min() and max() of the six, or a typeof() call each).
    blob: ColumnElement[Any] = literal_column("x''")
    all_text = and_(
        *(and_(field >= _const(""), field < blob) for field in _SEARCHED),
        L.c.tag.is_not(None),  # compared with the row's HMAC: no header to compare with NULL
        or_(L.c.project.is_(None), and_(L.c.project >= _const(""), L.c.project < blob)),
    )
    return func.iif(all_text, func.concat(*pieces), None)
