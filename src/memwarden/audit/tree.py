"""The RFC 6962 Merkle tree over the ledger: leaves, the stored frontier, proofs, rebuilds.

Leaf ``i`` is ledger row ``seq = i + 1``: the canonical JSON of its tagged fields and its tag
(``tlog.evidence.row_leaf``), never its payload, so an erasure leaves every proof valid.

The tree is derived data kept beside the ledger: ``merkle_state`` holds its size and frontier
(one hash per set bit of the size), ``merkle_nodes`` the hash of every complete subtree of
``2**STORED_LEVEL`` leaves or more. Extending it to a new head reads only the rows added since
(O(new rows + log n)), in a read snapshot; the write that records it is a few inserts, so
writers of the ledger are never held up by hashing. A proof reads O(log n) stored nodes and at
most two tiles of ``2**STORED_LEVEL`` rows. ``rebuild`` recomputes everything from the ledger
and says where the stored tree disagrees with it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import encode_basestring
from typing import Any

import structlog
from sqlalchemy import Connection, delete, func, insert, select, text, update

from memwarden.audit.fetch import driver_batches
from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.errors import LedgerError
from memwarden.tlog.merkle import Frontier, list_subtree, node_hash, split_point

log = structlog.get_logger(__name__)

L = schema.ledger
N = schema.merkle_nodes
S = schema.merkle_state
STORED_LEVEL = 8
# Names the tree's extension among the database's advisory locks (the chain has its own).
TREE_LOCK_ID = 0x6D777472
TILE = 1 << STORED_LEVEL
BATCH = 10_000

Progress = Callable[[int], None]

_LEAF_COLUMNS = (
    L.c.seq, L.c.entity_type, L.c.entity_id, L.c.project, L.c.action, L.c.actor, L.c.ts,
    L.c.payload_digest, L.c.prev_tag, L.c.tag,
)  # fmt: skip


class TreeError(LedgerError):
    """The stored tree cannot serve a proof (missing or disagreeing with the ledger)."""


def leaf_data(row: Any) -> bytes:
    """Leaf data of a ledger row (seq, entity_type, entity_id, project, action, actor, ts,
    digest, prev, tag): equal to ``tlog.evidence.row_leaf`` of the same fields, built by hand
    because a rebuild runs it once per row."""
    seq, etype, eid, project, action, actor, ts, digest, prev, tag = row
    enc = encode_basestring
    return (
        f'{{"action":{enc(action)},"actor":{enc(actor)},"digest":{enc(digest)},'
        f'"entity_id":{enc(eid)},"entity_type":{enc(etype)},"prev":{enc(prev)},'
        f'"project":{"null" if project is None else enc(project)},"seq":{int(seq)},'
        f'"tag":{enc(tag)},"ts":{enc(ts)}}}'
    ).encode()


# A leaf with its fields put in as raw bytes. It is the canonical leaf exactly when no field
# needs a JSON escape: no quote, backslash or control character in any field, which the
# count of quotes and one search of the result settle. Any other row takes ``leaf_data``.
_LEAF = (
    b'{"action":"%b","actor":"%b","digest":"%b","entity_id":"%b","entity_type":"%b",'
    b'"prev":"%b","project":"%b","seq":%d,"tag":"%b","ts":"%b"}'
)
_LEAF_NO_PROJECT = (
    b'{"action":"%b","actor":"%b","digest":"%b","entity_id":"%b","entity_type":"%b",'
    b'"prev":"%b","project":null,"seq":%d,"tag":"%b","ts":"%b"}'
)
_NEEDS_ESCAPE = re.compile(rb"[\x00-\x1f\\]")


def leaf_hashes(conn: Connection, first_seq: int, last_seq: int) -> Iterator[bytes]:
    """The leaf hashes of rows ``first_seq..last_seq`` in order: the driver's rows, text as
    bytes (as the verify walk reads them), each leaf built by one bytes format."""
    query = (
        select(*_LEAF_COLUMNS).where(L.c.seq >= first_seq, L.c.seq <= last_seq).order_by(L.c.seq)
    )
    expected = first_seq
    search = _NEEDS_ESCAPE.search
    with closing(driver_batches(conn, query, BATCH)) as batches:
        for batch in batches:
            for row in batch:
                seq, etype, eid, project, action, actor, ts, digest, prev, tag = row
                if seq != expected:
                    raise TreeError(f"ledger row {expected} is missing: the tree cannot cover it")
                expected += 1
                if project is None:
                    leaf = _LEAF_NO_PROJECT % (
                        action,
                        actor,
                        digest,
                        eid,
                        etype,
                        prev,
                        seq,
                        tag,
                        ts,
                    )
                    quotes = 36
                else:
                    leaf = _LEAF % (action, actor, digest, eid, etype, prev, project, seq, tag, ts)
                    quotes = 38
                if leaf.count(b'"') != quotes or search(leaf) is not None:
                    leaf = leaf_data(
                        [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row]
                    )
                yield sha256(b"\x00" + leaf).digest()
    if expected <= last_seq:
        raise TreeError(f"ledger row {expected} is missing: the tree cannot cover it")


def row_dict(row: Any) -> dict[str, Any]:
    """A ledger row's leaf fields by the names a third party's verifier reads."""
    seq, etype, eid, project, action, actor, ts, digest, prev, tag = row
    return {
        "action": action, "actor": actor, "digest": digest, "entity_id": eid,
        "entity_type": etype, "prev": prev, "project": project, "seq": int(seq), "tag": tag,
        "ts": ts,
    }  # fmt: skip


def leaf_rows(conn: Connection, first_seq: int, last_seq: int) -> Iterator[Any]:
    """The leaf columns of rows ``first_seq..last_seq`` in order, streamed in batches."""
    query = (
        select(*_LEAF_COLUMNS)
        .where(L.c.seq >= first_seq, L.c.seq <= last_seq)
        .order_by(L.c.seq)
        .execution_options(yield_per=BATCH)
    )
    expected = first_seq
    for row in conn.execute(query):
        if row[0] != expected:
            raise TreeError(f"ledger row {expected} is missing: the tree cannot cover it")
        expected += 1
        yield row
    if expected <= last_seq:
        raise TreeError(f"ledger row {expected} is missing: the tree cannot cover it")


def ledger_size(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(L.c.seq), 0))).scalar_one())


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


@dataclass(frozen=True)
class RebuildReport:
    size: int
    root: bytes
    rows_per_second: float
    seconds: float
    stored_size: int
    mismatches: list[str]
    roots_at: dict[int, bytes]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _frontier_text(frontier: Frontier) -> str:
    return ",".join(h.hex() for h in frontier.hashes)


def load_frontier(conn: Connection) -> Frontier:
    row = conn.execute(select(S.c.size, S.c.frontier).where(S.c.id == 1)).first()
    if row is None:
        return Frontier()
    try:
        hashes = [bytes.fromhex(h) for h in row.frontier.split(",") if h]
        return Frontier(int(row.size), hashes)
    except ValueError as exc:
        raise TreeError(
            f"the stored Merkle frontier is unreadable ({exc}): rebuild the tree"
        ) from exc


def _save(
    conn: Connection, frontier: Frontier, nodes: dict[tuple[int, int], bytes], old: int
) -> bool:
    """Record an extension from ``old`` leaves; False when another process got there first."""
    current = conn.execute(select(S.c.size).where(S.c.id == 1)).scalar_one_or_none()
    if (current or 0) != old:
        return False
    if nodes:
        conn.execute(
            insert(N),
            [{"level": lv, "idx": ix, "hash": h.hex()} for (lv, ix), h in nodes.items()],
        )
    values = {
        "size": frontier.size,
        "frontier": _frontier_text(frontier),
        "root": frontier.root().hex(),
        "updated_at": datetime.now(UTC),
    }
    if current is None:
        conn.execute(insert(S).values(id=1, **values))
    else:
        conn.execute(update(S).where(S.c.id == 1).values(**values))
    return True


def _keeper(nodes: dict[tuple[int, int], bytes]) -> Callable[[int, int, bytes], None]:
    """Collects the complete subtrees the stored tree keeps, as a frontier closes them."""

    def keep(level: int, index: int, value: bytes) -> None:
        if level >= STORED_LEVEL:
            nodes[level, index] = value

    return keep


def extend(
    store: Store, *, to_size: int | None = None, progress: Progress | None = None
) -> TreeHead:
    """Bring the stored tree up to the ledger's head (or ``to_size``) and return its head."""
    for _attempt in range(5):
        with store.read() as conn:
            frontier = load_frontier(conn)
            start = frontier.size
            end = ledger_size(conn) if to_size is None else to_size
            if end < start:
                raise TreeError(
                    f"the stored tree covers {start} rows but the ledger holds {end}: the "
                    "ledger lost rows (or was put back from an older copy); run "
                    "`memwarden audit verify`"
                )
            if end == start:
                return TreeHead(start, frontier.root())
            nodes: dict[tuple[int, int], bytes] = {}
            keep = _keeper(nodes)
            done = 0
            for leaf in leaf_hashes(conn, start + 1, end):
                frontier.append(leaf, keep)
                done += 1
                if progress is not None and done % BATCH == 0:
                    progress(done)
        with store.write() as unit:
            if unit.conn.dialect.name == "postgresql":
                # Serialises extenders only (never the ledger's writers), also before the state
                # row exists; SQLite's write transaction already holds the one write lock.
                unit.conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": TREE_LOCK_ID})
            if _save(unit.conn, frontier, nodes, start):
                log.info("merkle_tree_extended", from_size=start, to_size=frontier.size)
                return TreeHead(frontier.size, frontier.root())
    raise TreeError("the Merkle tree kept moving under this extension; try again")


class StoredTree:
    """Subtree hashes of the stored tree, for proofs: stored nodes where the tree keeps them,
    ledger rows (a tile at a time) below."""

    def __init__(self, conn: Connection, size: int) -> None:
        stored = conn.execute(select(S.c.size).where(S.c.id == 1)).scalar_one_or_none() or 0
        if size > stored:
            raise TreeError(
                f"the tree is built up to {stored} rows, not {size}: make a checkpoint first"
            )
        self.conn = conn
        self.size = size
        self._tiles: dict[int, list[bytes]] = {}
        self.rows_read = 0

    def _tile(self, tile: int) -> list[bytes]:
        if tile not in self._tiles:
            first = tile * TILE + 1
            last = min((tile + 1) * TILE, self.size)
            hashes = list(leaf_hashes(self.conn, first, last))
            self.rows_read += len(hashes)
            self._tiles[tile] = hashes
        return self._tiles[tile]

    def subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n >= TILE and n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            value = self.conn.execute(
                select(N.c.hash).where(N.c.level == level, N.c.idx == start >> level)
            ).scalar_one_or_none()
            if value is None:
                raise TreeError(
                    f"the stored tree lacks the node over rows {start + 1}..{end}: rebuild it "
                    "(`memwarden audit rebuild-tree`)"
                )
            return bytes.fromhex(value)
        if start // TILE == (end - 1) // TILE:
            tile = self._tile(start // TILE)
            offset = (start // TILE) * TILE
            return list_subtree(tile)(start - offset, end - offset)
        k = split_point(n)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))


def rebuild(
    store: Store,
    *,
    roots_at: tuple[int, ...] = (),
    repair: bool = False,
    progress: Progress | None = None,
) -> RebuildReport:
    """Recompute the tree from every ledger row, in one read snapshot; compare it with the
    stored tree (nodes and frontier) and, with ``repair``, replace the stored one. The roots
    at the sizes in ``roots_at`` are kept along the way (a published checkpoint's size)."""
    started = time.perf_counter()
    wanted = set(roots_at)
    found_roots: dict[int, bytes] = {}
    if 0 in wanted:
        found_roots[0] = Frontier().root()
    mismatches: list[str] = []
    with store.read() as conn:
        size = ledger_size(conn)
        stored = load_frontier(conn)
        stored_nodes = {
            (int(r.level), int(r.idx)): r.hash
            for r in conn.execute(select(N.c.level, N.c.idx, N.c.hash))
        }
        frontier = Frontier()
        nodes: dict[tuple[int, int], bytes] = {}
        keep = _keeper(nodes)
        for leaf in leaf_hashes(conn, 1, size):
            frontier.append(leaf, keep)
            if frontier.size in wanted:
                found_roots[frontier.size] = frontier.root()
            if progress is not None and frontier.size % BATCH == 0:
                progress(frontier.size)
            if frontier.size == stored.size and frontier.hashes != stored.hashes:
                mismatches.append(
                    f"the stored frontier at {stored.size} rows differs from the ledger's"
                )
    seconds = time.perf_counter() - started
    if stored.size > size:
        mismatches.append(f"the stored tree covers {stored.size} rows but the ledger holds {size}")
    bad = sorted(
        key for key, value in stored_nodes.items() if key in nodes and nodes[key].hex() != value
    )
    if bad:
        level, index = bad[0]
        mismatches.append(
            f"{len(bad)} stored node(s) differ from the ledger, the first over rows "
            f"{(index << level) + 1}..{(index + 1) << level}"
        )
    beyond = [key for key in stored_nodes if key not in nodes]
    if beyond:
        mismatches.append(f"{len(beyond)} stored node(s) lie beyond the ledger's rows")
    if repair:
        with store.write() as unit:
            unit.conn.execute(delete(N))
            unit.conn.execute(delete(S))
            _save(unit.conn, frontier, nodes, 0)
        log.warning("merkle_tree_rebuilt", size=size, mismatches=len(mismatches))
    return RebuildReport(
        size=size,
        root=frontier.root(),
        rows_per_second=size / seconds if seconds > 0 else float(size),
        seconds=seconds,
        stored_size=stored.size,
        mismatches=mismatches,
        roots_at=found_roots,
    )
