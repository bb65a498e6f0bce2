"""PostgreSQL: the parameters of the ledger's scripts quoted on the client
(``statements.client_bound_each``) reach the server as the values they were, whatever the text:
quotes, backslashes, comment openers, non-ASCII, and what only psycopg may quote (NUL, lone
surrogates, other types) still goes through psycopg."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PG_ADMIN_URL, require_postgres
from memwarden.audit import statements

SQL = "SELECT %(text)s::text, 1-%(number)s, %(none)s::text, '%%'"


@pytest.fixture(scope="module")
def conn() -> Iterator[sa.Connection]:
    require_postgres()
    engine = sa.create_engine(PG_ADMIN_URL)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def _server_reads(conn: sa.Connection, sql: str) -> tuple[Any, ...]:
    result = statements.libpq_exec(conn, sql)
    encoding = conn.connection.dbapi_connection.info.encoding  # type: ignore[union-attr]
    return tuple(
        None if result.get_value(0, i) is None else bytes(result.get_value(0, i)).decode(encoding)
        for i in range(result.nfields)
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    number=st.integers(min_value=-(2**62), max_value=2**62),
)
def test_quoted_here_the_server_reads_the_values_given(
    conn: sa.Connection, text: str, number: int
) -> None:
    params = {"text": text, "number": number, "none": None}
    assert statements._literals(conn.connection.dbapi_connection, params) is not None
    (sql,) = statements.client_bound_each(conn, [SQL], params)
    assert _server_reads(conn, sql) == (text, str(1 - number), None, "%")


@pytest.mark.parametrize(
    "text",
    [
        "it's",
        "back\\slash",
        "\\'; DROP TABLE memwarden_quoting_canary; --",
        "-- not a comment",
        "ünï€ode 🔒",
        "%(text)s",
    ],
)
def test_hostile_text_is_only_text(conn: sa.Connection, text: str) -> None:
    (sql,) = statements.client_bound_each(conn, [SQL], {"text": text, "number": -1, "none": None})
    assert _server_reads(conn, sql) == (text, "2", None, "%")


@pytest.mark.parametrize("value", ["nul\x00inside", "lone \ud800 surrogate", 1.5, True, b"bytes"])
def test_what_only_psycopg_may_quote_goes_through_psycopg(
    conn: sa.Connection, value: object
) -> None:
    driver = conn.connection.dbapi_connection
    assert statements._literals(driver, {"text": value}) is None
    cursor = conn.dialect.loaded_dbapi.ClientCursor(driver)
    try:
        expected = cursor.mogrify("%(text)s", {"text": value})
    except Exception as exc:  # noqa: BLE001 - psycopg's own refusal is what must come out
        with pytest.raises(type(exc)):
            statements.client_bound_each(conn, ["%(text)s"], {"text": value})
    else:
        assert statements.client_bound_each(conn, ["%(text)s"], {"text": value}) == [expected]


@pytest.mark.parametrize(
    "setting",
    ["SET standard_conforming_strings = off", "SET client_encoding = 'LATIN1'"],
)
def test_a_connection_where_quotes_mean_something_else_goes_through_psycopg(setting: str) -> None:
    """With backslashes as escapes in '...' (standard_conforming_strings off), or another
    encoding, memwarden's quoting would not mean the text: psycopg quotes instead, and the
    server still reads the values given."""
    require_postgres()
    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(setting)
            conn.commit()
            text = "back\\slash' and quote, caf\u00e9"
            params = {"text": text, "number": -3, "none": None}
            assert statements._literals(conn.connection.dbapi_connection, params) is None
            (sql,) = statements.client_bound_each(conn, [SQL], params)
            assert _server_reads(conn, sql) == (text, "4", None, "%")
            conn.invalidate()  # not back to the pool with that setting
    finally:
        engine.dispose()
