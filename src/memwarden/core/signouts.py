"""Dashboard sessions ended on the server: a signed-out cookie stops working at once.

The session cookie is signed and carries no server state, so signing out records its nonce
until the moment the cookie would have expired anyway; expired records are swept on the way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from memwarden.core.runtime import Runtime
from memwarden.db import schema

T = schema.dashboard_signouts


def end(rt: Runtime, nonce: str, expires_at: datetime) -> None:
    with rt.store.write() as unit:
        unit.conn.execute(delete(T).where(T.c.expires_at < datetime.now(UTC)))
        try:
            with unit.conn.begin_nested():
                unit.conn.execute(T.insert().values(nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            pass  # signed out twice: already ended


def ended(rt: Runtime, nonce: str) -> bool:
    with rt.read() as conn:
        return conn.execute(select(T.c.nonce).where(T.c.nonce == nonce)).first() is not None
