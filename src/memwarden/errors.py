"""Precise exception types. Faces (CLI, HTTP, MCP) map these to exit codes and status codes."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The error's first line for a message: the driver's own when SQLAlchemy wraps one (its
    ``orig``), and the error's type when it says nothing."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


class MemwardenError(Exception):
    """Base of every error memwarden raises on purpose."""

    code = "error"


class NotFoundError(MemwardenError):
    code = "not_found"


class InvalidInputError(MemwardenError):
    code = "invalid"


class IllegalTransitionError(MemwardenError):
    code = "illegal_transition"

    def __init__(self, memory_id: int, status: str, operation: str, detail: str = "") -> None:
        self.memory_id = memory_id
        self.status = status
        self.operation = operation
        message = f"cannot {operation} memory {memory_id}: it is {status}"
        super().__init__(f"{message} ({detail})" if detail else message)


class ForbiddenError(MemwardenError):
    """The caller's key lacks the scope (or the project) this needs."""

    code = "forbidden"


class RateLimitedError(MemwardenError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(MemwardenError):
    code = "conflict"


class TamperedRowError(ConflictError):
    """A memory or project-state row whose MAC does not match its fields: edited outside
    memwarden, so it is not served (``integrity check --fix`` restores it from the ledger)."""

    code = "tampered"

    def __init__(self, kind: str, ident: str, project: str | None) -> None:
        self.kind = kind
        self.ident = ident
        self.project = project
        super().__init__(
            f"{kind} {ident} was changed outside memwarden (its row MAC does not match): it is "
            "withheld; run `memwarden integrity check --fix` to restore it from the ledger"
        )


class TamperedLedgerError(ConflictError):
    """A ledger row (its entry or its payload) that fails its tag: edited outside memwarden,
    so nothing is rebuilt from it (no repair, revert, time travel or evidence bundle)."""

    code = "tampered_ledger"

    def __init__(self, seq: int) -> None:
        self.seq = seq
        super().__init__(
            f"ledger row {seq} fails its tag (its entry or payload was edited outside "
            "memwarden): nothing is built from it; run `memwarden audit verify`"
        )


class StorageError(MemwardenError):
    """The database cannot be used as it is (not a database, unreachable, wrong schema)."""

    code = "storage"


class ClosedError(StorageError):
    """The memwarden (its store) was closed: nothing more is read or written through it."""

    code = "closed"

    def __init__(self, message: str = "memwarden was closed: nothing was read or written") -> None:
        super().__init__(message)


class SchemaMismatchError(StorageError):
    code = "schema_mismatch"


class LedgerError(MemwardenError):
    """The ledger cannot be written or trusted (missing key or witness, strict-mode failure)."""

    code = "ledger"


class LedgerKeyMismatchError(LedgerError):
    """The ledger key in use is not the key the store was made with: writes and verification
    are refused until the right key is back (nothing is written meanwhile)."""

    code = "ledger_key_mismatch"

    def __init__(self, message: str, *, in_use: str, expected: str | None, key_file: str) -> None:
        super().__init__(message)
        self.in_use = in_use
        self.expected = expected
        self.key_file = key_file
