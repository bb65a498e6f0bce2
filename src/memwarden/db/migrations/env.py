"""Alembic environment, for both ways migrations run.

From memwarden (``memwarden init``, ``memwarden db …``, the library), a connection already in
a transaction is passed in ``config.attributes["connection"]``. From plain ``alembic -c
<this folder>/alembic.ini …`` nothing is passed: the database is the one memwarden's own
settings name (``MEMWARDEN_DATABASE_URL``, ``MEMWARDEN_HOME``, ``MEMWARDEN_PG_SCHEMA``), or
``-x url=…`` / ``sqlalchemy.url`` when given, opened with memwarden's engine (SQLite pragmas,
the PostgreSQL schema, created when missing).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from memwarden.config import Settings
from memwarden.db.engine import ensure_pg_schema, make_engine
from memwarden.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif context.is_offline_mode():
    raise SystemExit("memwarden's migrations run against a database, not as SQL (--sql)")
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    settings = Settings(database_url=url) if url else Settings()
    config.attributes.setdefault("settings", settings)  # 0010_row_macs reads the ledger key
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            ensure_pg_schema(conn, settings.resolved_pg_schema)
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
