"""The header the database builds for verify's fast path (``audit.sqlheader``) against the
reference, ``chain.header_bytes``, on both engines, for awkward values.

What the walk relies on: a row whose fields need no JSON escape gets exactly its canonical header
(no needless fallback); a row whose fields do gets a header that differs from it (its tag
cannot match, so the reference path decides); on SQLite a searched field that is not text gives no
header at all. And the walk, over a chain of such rows, verifies it, naming how many rows
it checked on the reference path.
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memwarden import Memwarden
from memwarden.audit.chain import format_ts, header_bytes
from memwarden.audit.diagnose import ChainBroken
from memwarden.audit.fetch import driver_batches
from memwarden.audit.marks import Marks
from memwarden.audit.walk import Walk, _fast_query
from memwarden.audit.witness import Head
from memwarden.db import schema

L, P = schema.ledger, schema.ledger_payloads

# Characters that need a JSON escape, or might upset SQL text handling, beside any character.
SPECIAL = ['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\u2028", "'"]
OTHER = ["é", "𝄞", "中", "\u0301", "\ufeff", "%", "{", "}", ":", ","]


def texts(engine_name: str, max_size: int = 30) -> st.SearchStrategy[str]:
    # PostgreSQL text cannot hold NUL (memwarden cannot store it there either).
    special = SPECIAL if engine_name == "sqlite" else [c for c in SPECIAL if c != "\x00"]
    blacklist = ("Cs",) if engine_name == "sqlite" else ("Cs", "Cc")
    return st.text(
        alphabet=st.one_of(
            st.sampled_from(special + OTHER),
            st.characters(codec="utf-8", blacklist_categories=blacklist),
        ),
        max_size=max_size,
    )


HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


def row_strategy(engine_name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "entity_type": texts(engine_name, 20),
            "entity_id": texts(engine_name) | st.just("x" * 400) | st.just(""),
            "project": st.none() | st.just("") | texts(engine_name),
            "action": texts(engine_name, 30),
            "actor": texts(engine_name) | st.just("a" * 200),
            "ts": MOMENTS.map(format_ts),
            "body": st.text(max_size=300).filter(lambda body: "\x00" not in body),
        }
    )


def _chain(
    mw: Memwarden, head: Head, conn: sa.Connection, drafts: list[dict[str, Any]]
) -> list[bytes]:
    """Append the drafts to the chain after ``head`` with genuine tags; their canonical
    headers."""
    key = mw.ledger.key
    seq, prev = head.seq, head.tag
    headers = []
    for draft in drafts:
        seq += 1
        body = draft["body"]
        digest = key.payload_digest(body)
        fields = {k: v for k, v in draft.items() if k != "body"}
        header = header_bytes(seq, payload_digest=digest, prev_tag=prev, **fields)
        tag = key.tag(header)
        conn.execute(
            L.insert().values(seq=seq, payload_digest=digest, prev_tag=prev, tag=tag, **fields)
        )
        conn.execute(P.insert().values(seq=seq, body=body, erased_at=None))
        headers.append(header)
        prev = tag
    return headers


def _sql_headers(conn: sa.Connection, first: int) -> list[bytes | None]:
    query = _fast_query(conn.dialect.name).where(L.c.seq >= first)
    with closing(driver_batches(conn, query, 500)) as batches:
        return [row[1] for batch in batches for row in batch]


def _needs_escape(header: bytes) -> bool:
    return b"\\" in header


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_sql_header_is_the_canonical_header(mw: Memwarden, engine_name: str) -> None:
    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(row_strategy(engine_name), min_size=1, max_size=4))
    @example(
        [
            {
                "entity_type": "memory",
                "entity_id": 'a","entity_type":"x',
                "project": None,
                "action": "created",
                "actor": "\\",
                "ts": format_ts(datetime(2026, 1, 1, tzinfo=UTC)),
                "body": "",
            },
            {
                "entity_type": "memory",
                "entity_id": "",
                "project": "",
                "action": "null",
                "actor": "é𝄞",
                "ts": format_ts(datetime(2026, 1, 1, tzinfo=UTC)),
                "body": "{}",
            },
        ]
    )
    def check(drafts: list[dict[str, Any]]) -> None:
        head = mw.anchor()  # before the connection: the pool may hold only one
        first = head.seq + 1
        with mw.store.engine.connect() as conn:
            trans = conn.begin()
            try:
                canonical = _chain(mw, head, conn, drafts)
                built = _sql_headers(conn, first)
                assert len(built) == len(canonical)
                for sql, reference in zip(built, canonical, strict=True):
                    assert sql is not None
                    if not _needs_escape(reference):
                        assert sql == reference  # the fast path takes every plain row
                    else:
                        # Never equal: the tag cannot match, the reference path decides.
                        assert sql != reference
                walk = Walk(conn, mw.ledger.key, Marks())
                head = walk.run(first, None)
                assert head.seq == first + len(drafts) - 1
                assert walk.checked == len(drafts)
                assert walk.fallbacks == sum(_needs_escape(h) for h in canonical)
            finally:
                trans.rollback()

    check()


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("field", "stored"),
    [
        ("entity_id", "CAST(entity_id AS BLOB)"),
        ("actor", "CAST(actor AS BLOB)"),
        ("project", "CAST(project AS BLOB)"),
        ("ts", "CAST(ts AS BLOB)"),
        # A BLOB holding the JSONB form of the text: json functions would read it as the text.
        ("entity_type", "jsonb(json_quote(entity_type))"),
        ("entity_id", "x''"),
    ],
)
def test_a_field_that_is_not_text_gives_no_header(mw: Memwarden, field: str, stored: str) -> None:
    """The ledger's triggers forbid UPDATE, so the row is copied with the field rewritten."""
    mw.remember("atlas", "The launch window opens in March")
    seq = mw.anchor().seq
    with mw.store.engine.connect() as conn:
        trans = conn.begin()
        try:
            before = _sql_headers(conn, seq)
            assert before[0] is not None and not _needs_escape(before[0])
            columns = [c.name for c in L.columns]
            values = ", ".join(
                str(seq + 1000)
                if c == "seq"
                else stored
                if c == field
                else c  # the stored value, as it is
                for c in columns
            )
            conn.exec_driver_sql(
                f"INSERT INTO ledger ({', '.join(columns)}) SELECT {values} FROM ledger "  # noqa: S608
                f"WHERE seq = {seq}"
            )
            typed = conn.exec_driver_sql(
                f"SELECT typeof({field}) FROM ledger WHERE seq = {seq + 1000}"  # noqa: S608
            ).scalar_one()
            assert typed != "text"
            after = _sql_headers(conn, seq + 1000)
            assert after == [None]
        finally:
            trans.rollback()


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("field", "action"),
    [
        ("entity_id", "created"),
        ("actor", "created"),
        ("action", "created"),
        ("tag", "created"),
        # An erasure row is read before the walk, to know which payloads were erased lawfully.
        ("actor", "erased"),
    ],
)
def test_a_field_set_to_null_gives_no_header_and_fails_the_walk(
    mw: Memwarden, field: str, action: str
) -> None:
    """PostgreSQL builds the header with one concat() call, which reads NULL as '': a field
    tagged as '' and stored as NULL (its NOT NULL dropped behind memwarden's back) must not pass
    for the empty text it was tagged with, nor a NULL tag crash the walk. The row gets no
    header, and the walk names it."""
    head = mw.anchor()
    seq = head.seq + 1
    fields: dict[str, Any] = {
        "entity_type": "memory",
        "entity_id": "7",
        "project": None,
        "action": action,
        "actor": "agent",
        "ts": format_ts(datetime(2026, 1, 1, tzinfo=UTC)),
    }
    if field in fields:
        fields[field] = ""
    key = mw.ledger.key
    digest = key.payload_digest("{}")
    header = header_bytes(seq, payload_digest=digest, prev_tag=head.tag, **fields)
    stored = {**fields, "tag": key.tag(header), field: None}
    with mw.store.engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.exec_driver_sql(f"ALTER TABLE ledger ALTER COLUMN {field} DROP NOT NULL")
            conn.execute(
                L.insert().values(seq=seq, payload_digest=digest, prev_tag=head.tag, **stored)
            )
            conn.execute(P.insert().values(seq=seq, body="{}", erased_at=None))
            assert _sql_headers(conn, seq) == [None]
            with pytest.raises(ChainBroken) as broken:
                Walk(conn, key, Marks()).run(seq, None)
            assert broken.value.seq == seq
            assert "stored as something other than text" in broken.value.reason
        finally:
            trans.rollback()
