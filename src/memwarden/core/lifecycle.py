"""The memory lifecycle: which operation may move a memory from which status to which."""

from __future__ import annotations

from dataclasses import dataclass

from memwarden.errors import IllegalTransitionError

CANDIDATE = "candidate"
ACTIVE = "active"
SUPERSEDED = "superseded"
INVALID = "invalid"
REJECTED = "rejected"
EXPIRED = "expired"
ERASED = "erased"

STATUSES = (CANDIDATE, ACTIVE, SUPERSEDED, INVALID, REJECTED, EXPIRED, ERASED)
LIVE = (CANDIDATE, ACTIVE)


@dataclass(frozen=True)
class Operation:
    name: str
    allowed_from: frozenset[str]
    to: str | None  # None keeps the status
    action: str  # the ledger verb


OPERATIONS = {
    op.name: op
    for op in (
        Operation("promote", frozenset({CANDIDATE}), ACTIVE, "promoted"),
        Operation("auto_promote", frozenset({CANDIDATE}), ACTIVE, "auto_promoted"),
        Operation("reject", frozenset({CANDIDATE}), REJECTED, "rejected"),
        Operation("invalidate", frozenset({ACTIVE}), INVALID, "invalidated"),
        Operation("supersede", frozenset({ACTIVE}), SUPERSEDED, "superseded"),
        Operation("expire", frozenset({CANDIDATE}), EXPIRED, "expired"),
        Operation("reinforce", frozenset(LIVE), None, "reinforced"),
        Operation("update", frozenset(LIVE), None, "updated"),
        Operation("erase", frozenset(STATUSES) - {ERASED}, ERASED, "erased"),
    )
}

# The status moves the diagram draws; a revert may only travel along one of these.
STATUS_MOVES = frozenset(
    {
        (CANDIDATE, ACTIVE),
        (CANDIDATE, REJECTED),
        (CANDIDATE, EXPIRED),
        (ACTIVE, INVALID),
        (ACTIVE, SUPERSEDED),
    }
)


def check(operation: str, memory_id: int, status: str) -> Operation:
    op = OPERATIONS[operation]
    if status not in op.allowed_from:
        raise IllegalTransitionError(
            memory_id,
            status,
            operation.replace("_", "-"),
            f"only {one_of(op.allowed_from)} memory can be {op.action.replace('_', '-')}",
        )
    return op


def one_of(statuses: frozenset[str] | set[str] | list[str]) -> str:
    """``a candidate``, ``an active or candidate``, ``an active, candidate or expired``: the
    states in order, with the article the first one takes."""
    words = sorted(statuses)
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    article = "an" if words and words[0][0] in "aeiou" else "a"
    return f"{article} {listed}"


def can_move(from_status: str, to_status: str) -> bool:
    return from_status == to_status or (from_status, to_status) in STATUS_MOVES
