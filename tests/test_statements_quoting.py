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
    return tuple(
        None if result.get_value(0, i) is None else bytes(result.get_value(0, i)).decode()
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
