"""The operation log: every domain operation timed and recorded, off the caller's path.

Where the ledger records what changed, the operation log records what was asked, by which
transport, for which project, and how long it took. See ``log.OpLog``.
"""

from memwarden.audit.oplog.entry import DEFAULT_TRANSPORT, TRANSPORTS, OperationEntry
from memwarden.audit.oplog.facade import known_actions, logged, logged_as
from memwarden.audit.oplog.log import OpLog, parse_actions, unknown_actions_message
from memwarden.audit.oplog.query import ActionStats, LoggedOperation
from memwarden.audit.oplog.retention import SweepResult
from memwarden.audit.oplog.timing import Timed
from memwarden.audit.oplog.transport import ViaMiddleware, current_transport, via

__all__ = [
    "DEFAULT_TRANSPORT",
    "TRANSPORTS",
    "ActionStats",
    "LoggedOperation",
    "OpLog",
    "OperationEntry",
    "SweepResult",
    "Timed",
    "ViaMiddleware",
    "current_transport",
    "known_actions",
    "logged",
    "logged_as",
    "parse_actions",
    "unknown_actions_message",
    "via",
]
