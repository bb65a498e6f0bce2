"""What every table module shares: the one ``MetaData`` and the column types of both engines.

Import tables through ``memwarden.db.schema``: it loads every table module, so its
``metadata`` holds the whole schema (a foreign key names its table by string)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# INTEGER PRIMARY KEY is the rowid on SQLite (autoincrementing); BIGINT identity on PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")


# What a stored time that is not one reads as (``UTCDateTime.result_processor``).
MALFORMED = datetime(1, 1, 1, tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """A stored value that is no time at all (text edited in the database: SQLite keeps
        whatever it is given) reads as ``MALFORMED`` instead of failing the whole query: one
        such row made every recall and scan that met it fail. The row's MAC then fails, so a
        read withholds it as tampered, as for any other edit."""
        inner = super().result_processor(dialect, coltype)
        if inner is None:
            return None

        def process(value: Any) -> datetime | None:
            try:
                return inner(value)
            except (ValueError, TypeError, OverflowError):
                return MALFORMED

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
