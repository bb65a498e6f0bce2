"""State gaps: project state entries that are not what their ledger says they are now.

The row MAC catches a state entry edited in place, but not one deleted, nor one put back whole
to an older version (a copy of an earlier row carries that version's valid MAC), nor a change
committed while the ledger failed (fail-open: the row is memwarden's own, its ledger row
missing). Comparing each entry with its newest ledger row catches all three: the newest
``after`` must be the live row exactly, an entry the ledger last deleted must have no row, and
every row must have ledger rows. Only the newest row counts, so setting the entry again through
memwarden (once checked) ends the finding; a change made without its ledger row and already
overwritten since is not found here (the fail-open alert reported it when it happened).

Every scan compares every entry: state is small beside the memories, and a deletion leaves
nothing an incremental scan could start from. A payload or a row no snapshot can come from (not
JSON, a value of another type, a time that is no time) is a finding for its entry, never an
error of the check, which would hide the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from memwarden.audit.chain import canonical_json
from memwarden.audit.entries import state_entity_id
from memwarden.db import schema
from memwarden.observability.integrity.audit_gaps import GapScan, grouped_steps
from memwarden.observability.integrity.context import CheckOutcome, ScanContext, driver_rows
from memwarden.observability.integrity.findings import Finding
from memwarden.observability.integrity.replay import Step, iso, split_payload

S = schema.project_state
L = schema.ledger
P = schema.ledger_payloads
ENTITY = "project_state"
DELETED = "state_deleted"


def _live_entries(ctx: ScanContext) -> dict[str, dict[str, Any]]:
    """Every state row as the ledger snapshots it, by its ledger name (a value no snapshot
    holds kept as its ``repr``, which no snapshot equals)."""
    query = select(
        S.c.project, S.c.category, S.c.key, S.c.value, S.c.source, S.c.created_at, S.c.updated_at
    )
    live = {}
    for project, category, key, value, source, created, updated in driver_rows(ctx.conn, query):
        project, category, key = _text(project), _text(category), _text(key)
        live[state_entity_id(project, category, key)] = {
            "project": project,
            "category": category,
            "key": key,
            "value": _text(value),
            "source": _text(source),
            "created_at": _time(created),
            "updated_at": _time(updated),
        }
    return live


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _time(value: Any) -> str | None:
    try:
        return iso(value)
    except (ValueError, TypeError, AttributeError):
        return repr(value)


def _state_steps(ctx: ScanContext) -> Iterator[tuple[str, list[Step]]]:
    query = (
        select(L.c.entity_id, L.c.seq, L.c.action, P.c.body)
        .select_from(L.outerjoin(P, P.c.seq == L.c.seq))
        .where(L.c.entity_type == ENTITY)
        .order_by(L.c.entity_id, L.c.seq)
    )
    return grouped_steps(driver_rows(ctx.conn, query, stream=True))


def replay_problem(live: dict[str, Any] | None, steps: list[Step]) -> str | None:
    """Why an entry's newest ledger row does not describe its live row (None: it does)."""
    last = steps[-1]
    if last.action == DELETED:
        if live is not None:
            return f"its row is back, though ledger row {last.seq} records its deletion"
        return None
    if live is None:
        return f"its row is gone, though ledger row {last.seq} records it"
    if last.body is None:
        return f"ledger row {last.seq}'s payload is blank (state is never erased)"
    parts = split_payload(last.body)
    if parts is not None and parts[0] == canonical_json(live):
        return None
    return _differs(live, last)


def _differs(live: dict[str, Any], last: Step) -> str | None:
    """The slow path: the payload parsed (not in canonical form, or not the row)."""
    assert last.body is not None
    try:
        payload = json.loads(last.body)
    except (ValueError, RecursionError):
        payload = None
    replayed = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(replayed, dict):
        return f"ledger row {last.seq}'s payload holds no snapshot of it"
    if replayed == live:
        return None  # the same snapshot, serialised another way
    fields = sorted(k for k in set(replayed) | set(live) if replayed.get(k) != live.get(k))
    return (
        f"its row differs from its newest ledger row {last.seq} ({', '.join(fields)}): put "
        "back to an older version, or changed without its ledger row"
    )


def replay_state(ctx: ScanContext) -> GapScan[str]:
    """Each entry by its ledger name (``state_entity_id``)."""
    scan: GapScan[str] = GapScan("project state")
    live = _live_entries(ctx)
    for entity_id, steps in _state_steps(ctx):
        scan.replayed_rows += len(steps)
        reason = replay_problem(live.pop(entity_id, None), steps)
        if reason is not None:
            scan.add(entity_id, reason)
    scan.unrecorded = sorted(live)
    return scan


def check_state_gaps(ctx: ScanContext) -> CheckOutcome:
    scan = replay_state(ctx)
    outcome = CheckOutcome(scanned=scan.replayed_rows)
    if scan.mismatched:
        outcome.findings.append(
            Finding.of(
                "state_gap_replay",
                "critical",
                scan.mismatched,
                f"{len(scan.mismatched)} project state entries differ from their newest ledger "
                f"row (deleted, put back, or changed without their ledger row); "
                f"e.g. {scan.first_reason}. `memwarden audit recent -p PROJECT` shows what was "
                "recorded; set each entry again (or delete it) once checked",
            )
        )
    if scan.unrecorded:
        outcome.findings.append(
            Finding.of(
                "state_gap_unrecorded",
                "critical",
                scan.unrecorded,
                f"{len(scan.unrecorded)} project state entries have no ledger rows at all",
            )
        )
    return outcome
