"""PostgreSQL: whether a pooled connection is still alive, asked on checkout without a round trip
when the connection was in use a moment ago.

SQLAlchemy's ``pool_pre_ping`` sends a statement on every checkout: one round trip for every
transaction, ~10% of a mutation's time here (docs/scaling.md, session 14). A server that ended
a connection (restarted, ``pg_terminate_backend``, an idle timeout) says so on the socket: a
FATAL message, then the connection's end. So an idle connection whose socket has nothing to
read, and which was handed back less than ``RECENT_S`` ago, is taken as it is; any other is
pinged as before, and a dead one invalidates the pool (every connection made before it), as
``pool_pre_ping`` does. What a ping would catch and this does not: a connection that died within
``RECENT_S`` without a word from the server (the network cut, the server's host gone). Then the
statement fails instead of the ping, with the same clear error (the storage faults, a 503), and
the pool replaces the connection; a ping to a host that is gone would hang as long.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# A connection handed back longer ago than this is pinged on checkout.
RECENT_S = 5.0
_CHECKED_IN = "memwarden_checked_in"  # in the pool entry's info: when it was handed back
_WATCHED = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def watch(engine: Engine) -> None:
    """Check the engine's connections on checkout (instead of ``pool_pre_ping``)."""
    dialect = engine.dialect
    pq = dialect.loaded_dbapi.pq

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        handed_back = record.info.pop(_CHECKED_IN, None)
        if handed_back is None:
            return  # just connected
        if time.monotonic() - handed_back < RECENT_S and quiet(dbapi_connection, pq):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(f"the database connection was lost: {exc}") from exc
            raise


def quiet(driver: Any, pq: Any) -> bool:
    """Whether a psycopg connection (``pq``: its ``psycopg.pq``) looks alive and idle: open,
    outside any transaction, and with nothing from the server waiting on its socket (an idle
    connection is sent nothing but a goodbye, or a notice nobody listens for)."""
    if driver.closed or driver.broken or driver.pgconn.status != pq.ConnStatus.OK:
        return False
    if driver.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    poller.register(driver.pgconn.socket, _WATCHED)
    return not poller.poll(0)
