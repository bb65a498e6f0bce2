"""A column matched against a list of values, as each engine does it best.

PostgreSQL: ``column = ANY(:values)``, one array parameter. SQLAlchemy's ``IN`` expands to one
parameter per value, so each count of values is a new statement text for the driver and the
server to parse and plan: for recall's ~100 candidate ids that cost ~1.3 ms of client CPU and
~2–3 ms of wall time against ~0.5 and ~1 ms with the array (measured on a 100k store; docs/
recall.md). SQLite runs in process, where the expanded ``IN`` is cheap and arrays do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, any_, bindparam, literal
from sqlalchemy.dialects.postgresql import ARRAY


def in_list(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (an empty list matches nothing)."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(column.type)))
    return column.in_(values)


def in_param(dialect: str, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column`` is one of the list bound as ``name`` at execution, as ``in_list`` matches
    it: for a statement built once per engine kind and run many times (building one costs
    more than SQLite takes to run it: ~0.2 ms for recall's ~60 ids)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
