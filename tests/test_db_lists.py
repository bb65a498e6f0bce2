"""``in_list``: a column matched against a list, as one array parameter on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from memwarden import Memwarden
from memwarden.db import schema
from memwarden.db.lists import in_list


@pytest.mark.parametrize("count", [0, 1, 3, 250])
def test_in_list_finds_exactly_the_rows_listed(mw: Memwarden, count: int) -> None:
    mw.add_project("p")
    ids = [mw.remember("p", f"fact number {i}").memory.id for i in range(5)]
    wanted = (ids[::2] + list(range(10_000, 10_000 + count)))[:count]
    m = schema.memories
    with mw.store.read() as conn:
        found = conn.execute(select(m.c.id).where(in_list(conn, m.c.id, wanted))).scalars()
        texts = conn.execute(
            select(m.c.content).where(in_list(conn, m.c.content, ["fact number 1", "none"]))
        ).scalars()
        assert sorted(found) == sorted(i for i in wanted if i in ids)
        assert list(texts) == ["fact number 1"]
        if conn.dialect.name == "postgresql":
            statement = str(select(m.c.id).where(in_list(conn, m.c.id, wanted)).compile(conn))
            assert "ANY" in statement and statement.count("%(") == 1  # one parameter, any count
