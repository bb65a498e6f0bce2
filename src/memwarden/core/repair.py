"""``integrity check --fix``: repair the drift that is safe to repair, each repair an audited
mutation by ``integrity-repair``.

What is repaired, in this order (each repair its own transaction, so one that no longer applies
does not hold the others back):

0. a memory or project-state row whose row MAC fails (edited outside memwarden): put back to
   its last ledger snapshot with a fresh MAC (actions ``restored`` / ``state_restored``), its
   alert resolved; first, since the other repairs refuse to build on such a row. A row whose
   ledger holds no version to go back to (none, or blanked) is left for a person;
1. duplicate active memories: each is superseded by the oldest memory saying the same thing;
2. broken supersede links: a superseded memory whose successor is missing or unnamed points
   again at the successor its ledger recorded, if that memory exists; otherwise it stands again
   (active, no successor), or, when a live memory already says the same, points at that one;
   on a loop of links the newest memory stands again, which turns the loop into a chain;
3. memories citing a source chunk that does not exist: the reference is cleared, with a note;
4. a full-text index that does not match its rows: rebuilt from its table (the ledger records
   it: entity ``index``, action ``rebuilt``, by ``integrity-repair``).

Never repaired: ledger chain breaks, audit gaps and state gaps (a person must look), source
chunks of a missing document and project state of a missing project (deleting them would lose
data the ledger may not hold). Nothing here deletes a row, least of all a ledger row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, select

from memwarden.audit import records
from memwarden.audit.actor import INTEGRITY_REPAIR, acting_as
from memwarden.audit.chain import ChainKey
from memwarden.audit.entries import state_entity_id
from memwarden.core import lifecycle, memories, projects, superseding
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.tamper import RowGuard
from memwarden.db import schema
from memwarden.errors import ConflictError, MemwardenError
from memwarden.observability.integrity import fulltext, relational, rowmacs
from memwarden.observability.integrity.findings import RepairRecord

log = structlog.get_logger(__name__)

M = schema.memories
S = schema.project_state
NOTE = "integrity repair"

FOLD = "fold duplicate"
RELINK = "relink successor"
REINSTATE = "reinstate"
CLEAR_CHUNK = "clear chunk reference"
REBUILD_INDEX = "rebuild index"
RESTORE = "restore from ledger"


@dataclass(frozen=True)
class PlannedRepair:
    check: str
    target: int
    action: str
    note: str
    successor: int | None = None  # the memory a fold or a relink points at
    index: str | None = None  # the full-text index a rebuild rebuilds

    def record(self, *, applied: bool, error: str | None = None) -> RepairRecord:
        return RepairRecord(self.check, self.target, self.action, self.note, applied, error)


def plan(rt: Runtime) -> list[PlannedRepair]:
    """Every safe repair for the drift in the database now, in the order they are applied."""
    with rt.read() as conn:
        # Tampered rows first: the other repairs refuse to build on a row whose MAC fails.
        planned = _restores(conn, rt.ledger.key)
        planned += _duplicate_folds(conn)
        planned += _supersede_repairs(conn, rt.ledger.key)
        planned += [
            PlannedRepair(
                "dangling_chunk_refs",
                memory_id,
                CLEAR_CHUNK,
                f"{NOTE}: the cited source chunk does not exist; reference cleared",
            )
            for memory_id in relational.find_dangling_chunk_refs(conn)
        ]
    with rt.store.connect() as conn:  # the SQLite check needs a connection of its own
        planned += [
            PlannedRepair(
                fulltext.CHECK,
                0,
                REBUILD_INDEX,
                f"{NOTE}: the full-text index {index.table} did not match its rows ({why}); "
                "rebuilt",
                index=index.table,
            )
            for index, why in fulltext.broken_indexes(conn)
        ]
    return planned


def _restores(conn: Connection, key: ChainKey) -> list[PlannedRepair]:
    found = rowmacs.find_tampered(conn, key)
    planned = [
        PlannedRepair(
            rowmacs.MEMORIES,
            memory_id,
            RESTORE,
            f"{NOTE}: memory {memory_id} was changed outside memwarden; restored from its last "
            "ledger snapshot",
        )
        for memory_id in found.memories
    ]
    planned += [
        PlannedRepair(
            rowmacs.STATE,
            row_id,
            RESTORE,
            f"{NOTE}: project state {name} was changed outside memwarden; restored from its "
            "last ledger snapshot",
        )
        for row_id, name in found.state
    ]
    return planned


def _restore(rt: Runtime, repair: PlannedRepair) -> None:
    with rt.mutation() as m:
        if repair.check == rowmacs.MEMORIES:
            entity_id = str(repair.target)
            version = _last_version(m.conn, rt.ledger.key, "memory", entity_id)
            memories.restore_in(m, repair.target, version, repair.note)
            kind = "memory"
        else:
            row = m.conn.execute(
                select(S.c.project, S.c.category, S.c.key).where(S.c.id == repair.target)
            ).first()
            if row is None:
                raise ConflictError(f"project state row {repair.target} is gone")
            entity_id = state_entity_id(row.project, row.category, row.key)
            version = _last_version(m.conn, rt.ledger.key, "project_state", entity_id)
            projects.state_restore_in(m, repair.target, version, repair.note)
            kind = "project_state"
    RowGuard.restored(kind, entity_id)


def _last_version(
    conn: Connection, key: ChainKey, entity_type: str, entity_id: str
) -> dict[str, Any]:
    history = records.history(conn, entity_type, entity_id, key)
    last = history[-1] if history else None
    if last is None or last.after is None or (last.erased and last.action != "erased"):
        raise ConflictError(
            f"{entity_type} {entity_id} has no ledger version to restore: left as it is "
            "(withheld); a person must decide"
        )
    records.require_authentic(last)  # never restore what the attacker wrote in the ledger
    return last.after


def _duplicate_folds(conn: Connection) -> list[PlannedRepair]:
    return [
        PlannedRepair(
            "duplicate_memories",
            newer,
            FOLD,
            f"{NOTE}: duplicate of memory {group[0]}, folded into it",
            successor=group[0],
        )
        for group in relational.find_duplicate_groups(conn)
        for newer in group[1:]
    ]


def _supersede_repairs(conn: Connection, key: ChainKey) -> list[PlannedRepair]:
    breaks = relational.find_supersede_breaks(conn)
    planned: list[PlannedRepair] = []
    for check, ids in (
        ("supersede_dangling", breaks.dangling),
        ("supersede_missing_successor", breaks.missing_successor),
    ):
        statuses = _statuses(conn, ids)
        for memory_id in ids:
            recorded = (
                _recorded_successor(conn, key, memory_id)
                if statuses.get(memory_id) == lifecycle.SUPERSEDED
                else None
            )
            if recorded is not None:
                planned.append(
                    PlannedRepair(
                        check,
                        memory_id,
                        RELINK,
                        f"{NOTE}: successor restored to memory {recorded}, as the ledger recorded",
                        successor=recorded,
                    )
                )
            else:
                planned.append(
                    PlannedRepair(
                        check,
                        memory_id,
                        REINSTATE,
                        f"{NOTE}: its successor is gone; the memory stands again",
                    )
                )
    for newest in _newest_of_each_loop(conn, breaks.loops):
        planned.append(
            PlannedRepair(
                "supersede_loops",
                newest,
                REINSTATE,
                f"{NOTE}: newest memory of a supersede loop; it stands again, ending the loop",
            )
        )
    return planned


def _statuses(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(select(M.c.id, M.c.status).where(M.c.id.in_(ids)))
    return {int(row.id): str(row.status) for row in rows}


def _recorded_successor(conn: Connection, key: ChainKey, memory_id: int) -> int | None:
    """The successor the memory's last supersede recorded, if that memory still exists (and
    the record is authentic: an edited one names no successor)."""
    for record in reversed(records.history(conn, "memory", str(memory_id), key)):
        if record.action != "superseded":
            continue
        if record.authentic is False:
            return None
        successor = (record.extra or {}).get("successor")
        if not isinstance(successor, int) or successor == memory_id:
            return None
        found = conn.execute(select(M.c.id).where(M.c.id == successor)).first()
        return successor if found is not None else None
    return None


def _newest_of_each_loop(conn: Connection, members: list[int]) -> list[int]:
    if not members:
        return []
    links = {
        int(row.id): int(row.superseded_by)
        for row in conn.execute(select(M.c.id, M.c.superseded_by).where(M.c.id.in_(members)))
    }
    newest: list[int] = []
    seen: set[int] = set()
    for start in sorted(links):
        if start in seen:
            continue
        loop: list[int] = []
        node = start
        while node not in seen and node in links:
            seen.add(node)
            loop.append(node)
            node = links[node]
        newest.append(max(loop))
    return sorted(newest)


# -- applying -------------------------------------------------------------------------------
def apply(rt: Runtime, planned: list[PlannedRepair]) -> list[RepairRecord]:
    done: list[RepairRecord] = []
    with acting_as(INTEGRITY_REPAIR):
        for repair in planned:
            try:
                _apply_one(rt, repair)
            except MemwardenError as exc:
                # The database moved on since the plan (or the repair is refused): say so and
                # go on with the others; the rescan shows what is left.
                log.warning(
                    "integrity_repair_skipped",
                    check=repair.check,
                    target=repair.target,
                    error=str(exc),
                )
                done.append(repair.record(applied=False, error=str(exc)))
            else:
                done.append(repair.record(applied=True))
    return done


def _apply_one(rt: Runtime, repair: PlannedRepair) -> None:
    if repair.action == RESTORE:
        _restore(rt, repair)
        return
    if repair.action == REBUILD_INDEX:
        index = next(i for i in fulltext.INDEXES if i.table == repair.index)
        with rt.mutation() as m:
            fulltext.rebuild(m.conn, index)
            m.record(
                "index", index.table, None, "rebuilt", None, {"index": index.table}, repair.note
            )
        return
    if repair.action == FOLD:
        assert repair.successor is not None
        superseding.supersede(rt, repair.target, by=repair.successor, note=repair.note)
        return
    with rt.mutation() as m:
        memory = memories.load(m.conn, repair.target, for_update=True)
        if repair.action == CLEAR_CHUNK:
            memories.update_in(m, memory, {"source_chunk_id": None}, repair.note)
        elif repair.action == RELINK:
            memories.update_in(m, memory, {"superseded_by": repair.successor}, repair.note)
        else:
            _reinstate(m, memory, repair.note)


def _reinstate(m: Mutation, memory: Memory, note: str) -> None:
    changes: dict[str, Any] = {"superseded_by": None}
    if memory.status == lifecycle.SUPERSEDED:
        changes["status"] = lifecycle.ACTIVE
    try:
        memories.update_in(m, memory, changes, note)
    except ConflictError:
        # A live memory already says the same (update_in refused before writing anything):
        # that one becomes the successor instead.
        same = _active_saying_the_same(m.conn, memory)
        if same is None:
            raise
        memories.update_in(
            m, memory, {"superseded_by": same}, f"{note} (memory {same} already says this)"
        )


def _active_saying_the_same(conn: Connection, memory: Memory) -> int | None:
    found = conn.execute(
        select(M.c.id)
        .where(
            M.c.project == memory.project,
            M.c.type == memory.type,
            M.c.content_hash == memory.content_hash,
            M.c.status == lifecycle.ACTIVE,
            M.c.id != memory.id,
        )
        .order_by(M.c.created_at, M.c.id)
        .limit(1)
    ).scalar_one_or_none()
    return int(found) if found is not None else None
