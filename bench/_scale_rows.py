"""The bulk loaders' rows: each memory's table row and its genuine ledger, fast and byte for byte
as memwarden writes them.

Memories across a few projects and types, a tenth citing source chunks, some superseded; each
memory's ledger rows (created; promoted, superseded or rejected; reinforcements of the active
ones up to the ledger's size) hold the same snapshots as its current row, with tags computed
with the database's own key, so ``verify`` and the replay check real data end to end.

``rows`` is the fast path (10M rows in minutes): a memory's snapshots differ from one another
in a few fields only (status, updated_at, the reinforcement count and time, the successor), so
each is written from a per-memory template instead of ``canonical_json`` of a dict per row; the
times are formatted once per memory and only their microseconds filled in; the payload digests
and tags are HMACs on the key's own prepared hash states (``ChainKey.hmac_states``). The
chain header is memwarden's ``header_bytes`` and the memory row's MAC memwarden's ``RowMacs``.
``reference`` makes one memory's rows the plain way, with memwarden's ``canonical_json``,
``format_ts`` and ``ChainKey`` methods; the loader compares the two on a sample of memories as
it goes (``CHECK_EVERY``), and tests/test_bench_scale_rows.py on every kind of memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

from bench._corpus import EPOCH
from memwarden.audit.chain import ChainKey, canonical_json, format_ts, header_bytes
from memwarden.audit.rowmac import RowMacs
from memwarden.audit.witness import Head
from memwarden.core.text import content_hash

PROJECTS = ("atlas", "borealis", "cygnus", "draco")
TYPES = ("knowledge", "project", "preference")
DOCUMENTS = 100
CHUNKS_PER_DOCUMENT = 100
# Ten writers, each a tenth of the ledger: "what did this agent do lately" has real work to do.
ACTORS = tuple(f"agent-{n}" for n in range(10))
WORDS = (
    "engine valve pad orbit telemetry fuel crew window launch range booster stage tank "
    "sensor camera antenna battery radio thermal schedule review"
).split()
CONFIDENCE = 0.6
CHECK_EVERY = 10_007  # memories between two comparisons with ``reference`` (prime: all kinds)

# (memory row, ledger rows, payload rows) of one memory. A memory row holds its times as aware
# datetimes and ends with its MAC; a ledger row is (seq, entity_id, project, action, actor, ts,
# payload_digest, prev_tag, tag) (entity_type is always "memory"); a payload row (seq, body).
Rows = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def plan(index: int) -> tuple[str, list[str]]:
    """A memory's final status and the ledger actions that led there."""
    kind = index % 10
    if kind <= 5:
        return "active", ["created", "promoted"]
    if kind <= 7:
        return "candidate", ["created"]
    if kind == 8:
        return "superseded", ["created", "superseded"]
    return "rejected", ["created", "rejected"]


def _life(memories: int, ledger_rows: int | None) -> Iterator[tuple[int, str, list[str]]]:
    """Each memory's id, final status and actions; the rows beyond each memory's life story are
    reinforcements of active memories (each a real ``reinforced`` step: count, times)."""
    active = sum(1 for i in range(1, memories + 1) if i % 10 <= 5)
    base = sum(len(plan(i)[1]) for i in range(1, memories + 1))
    per_active = max(0.0, ((ledger_rows or 0) - base) / active) if active else 0.0
    active_seen = 0
    for memory_id in range(1, memories + 1):
        status, actions = plan(memory_id)
        if status == "active":
            # Spread the extra rows evenly: round((j+1)k) - round(jk) sums to round(n k).
            extra = round((active_seen + 1) * per_active) - round(active_seen * per_active)
            actions = actions + ["reinforced"] * extra
            active_seen += 1
        yield memory_id, status, actions


def _facts(memory_id: int, status: str) -> tuple[str, str, str, int | None, int | None]:
    """A memory's project, type, text, source chunk and successor."""
    text = (
        f"The {WORDS[memory_id % len(WORDS)]} {WORDS[(memory_id // 7) % len(WORDS)]} "
        f"note number {memory_id} says the {WORDS[(memory_id // 3) % len(WORDS)]} is ready"
    )
    chunk = (
        (memory_id // 10) % (DOCUMENTS * CHUNKS_PER_DOCUMENT) + 1 if memory_id % 10 == 3 else None
    )
    successor = memory_id + 2 if status == "superseded" else None  # an active memory
    project = PROJECTS[memory_id % len(PROJECTS)]
    return project, TYPES[memory_id % len(TYPES)], text, chunk, successor


def _json(value: int | None) -> str:
    return "null" if value is None else str(value)


class _Maker:
    """One memory's rows the fast way (see the module's docstring)."""

    def __init__(self, key: ChainKey) -> None:
        self.inner, self.outer = key.hmac_states()
        self.macs = RowMacs(key)  # each row signed as memwarden's writer signs it

    def hmac_hex(self, message: bytes) -> str:
        """``ChainKey._hmac(message).hex()``, on the same prepared states."""
        hashed = self.inner.copy()
        hashed.update(message)
        outside = self.outer.copy()
        outside.update(hashed.digest())
        return str(outside.hexdigest())

    def memory(self, seq: int, prev: str, memory_id: int, status: str, actions: list[str]) -> Rows:
        if len(actions) >= 1000:  # the steps are microseconds after a whole millisecond
            raise ValueError(f"memory {memory_id} has {len(actions)} ledger rows; at most 999")
        hmac_hex = self.hmac_hex
        project, type_, text, chunk, successor = _facts(memory_id, status)
        digest_of_text = content_hash(text)
        created = EPOCH + timedelta(milliseconds=memory_id)
        second, micro = created.strftime("%Y-%m-%dT%H:%M:%S"), created.microsecond
        actor = ACTORS[memory_id % len(ACTORS)]
        entity_id = str(memory_id)
        # canonical_json of the snapshot: keys sorted, no spaces; the variable fields are
        # last_reinforced_at, reinforcement_count, status, superseded_by and updated_at.
        opening = (
            f'{{"confidence":{CONFIDENCE!r},"content":{encode_basestring(text)},'
            f'"content_hash":"{digest_of_text}","created_at":"{created.isoformat()}",'
            f'"id":{memory_id},"last_reinforced_at":'
        )
        after_reinforced = f',"project":{encode_basestring(project)},"reinforcement_count":'
        after_count = f',"source_chunk_id":{_json(chunk)},"status":'
        after_successor = f',"type":{encode_basestring(type_)},"updated_at":"'
        state = encode_basestring("candidate" if actions[1:2] != ["superseded"] else "active")
        final = encode_basestring(status)
        reinforced_json, count, successor_json = "null", 0, "null"
        before, extra_text = "null", ""
        ledger: list[tuple[Any, ...]] = []
        payloads: list[tuple[Any, ...]] = []
        for step, action in enumerate(actions):
            fraction = f"{micro + step:06d}"
            updated = created.isoformat() if step == 0 else f"{second}.{fraction}+00:00"
            if step:
                state = final
                if action == "superseded":
                    successor_json = _json(successor)
                    extra_text = f',"extra":{{"successor":{successor}}}'
                elif action == "reinforced":
                    count += 1
                    reinforced_json = f'"{updated}"'
            after = (
                f"{opening}{reinforced_json}{after_reinforced}{count}{after_count}{state}"
                f',"superseded_by":{successor_json}{after_successor}{updated}"}}'
            )
            body = f'{{"after":{after},"before":{before}{extra_text},"note":null}}'
            seq += 1
            digest = hmac_hex(body.encode("utf-8"))
            ts = f"{second}.{fraction}Z"
            tag = hmac_hex(
                header_bytes(seq, "memory", entity_id, project, action, actor, ts, digest, prev)
            )
            ledger.append((seq, entity_id, project, action, actor, ts, digest, prev, tag))
            payloads.append((seq, body))
            prev, before, extra_text = tag, after, ""
        moment = created + timedelta(microseconds=len(actions) - 1)
        fields = (
            memory_id, project, type_, text, digest_of_text, CONFIDENCE, status, chunk,
            count, successor, created, moment, moment if count else None,
        )  # fmt: skip
        return (*fields, self.macs.mac("memory", fields)), ledger, payloads


def rows(key: ChainKey, head: Head, memories: int, ledger_rows: int | None) -> Iterator[Rows]:
    """Each memory's rows, chained after ``head``; every ``CHECK_EVERY``-th memory is made the
    plain way too and the two compared (the run stops on a difference)."""
    maker = _Maker(key)
    seq, prev = head.seq, head.tag
    for memory_id, status, actions in _life(memories, ledger_rows):
        made = maker.memory(seq, prev, memory_id, status, actions)
        if memory_id % CHECK_EVERY == 1 and made != reference(
            key, seq, prev, memory_id, status, actions
        ):
            raise AssertionError(f"the fast rows of memory {memory_id} differ from the reference")
        last = made[1][-1]
        seq, prev = last[0], last[-1]
        yield made


def reference(
    key: ChainKey, seq: int, prev: str, memory_id: int, status: str, actions: list[str]
) -> Rows:
    """One memory's rows the plain way: its snapshot a dict through ``canonical_json``, its
    times through ``datetime`` and ``format_ts``, digests and tags through ``ChainKey``."""
    project, type_, text, chunk, successor = _facts(memory_id, status)
    created = EPOCH + timedelta(milliseconds=memory_id)
    snapshot: dict[str, Any] = {
        "id": memory_id,
        "project": project,
        "type": type_,
        "content": text,
        "content_hash": content_hash(text),
        "confidence": CONFIDENCE,
        "status": "candidate" if actions[1:2] != ["superseded"] else "active",
        "source_chunk_id": chunk,
        "reinforcement_count": 0,
        "superseded_by": None,
        "created_at": created.isoformat(),
        "updated_at": created.isoformat(),
        "last_reinforced_at": None,
    }
    actor = ACTORS[memory_id % len(ACTORS)]
    ledger: list[tuple[Any, ...]] = []
    payloads: list[tuple[Any, ...]] = []
    before, moment = "null", created
    reinforced: datetime | None = None
    for step, action in enumerate(actions):
        extra = ""
        if step:
            moment = created + timedelta(microseconds=step)
            snapshot["status"] = status
            snapshot["updated_at"] = moment.isoformat()
            if action == "superseded":
                snapshot["superseded_by"] = successor
                extra = f',"extra":{{"successor":{successor}}}'
            elif action == "reinforced":
                reinforced = moment
                snapshot["reinforcement_count"] += 1
                snapshot["last_reinforced_at"] = moment.isoformat()
        after = canonical_json(snapshot)
        body = '{"after":' + after + ',"before":' + before + extra + ',"note":null}'
        seq += 1
        digest, ts = key.payload_digest(body), format_ts(moment)
        tag = key.tag(
            header_bytes(seq, "memory", str(memory_id), project, action, actor, ts, digest, prev)
        )
        ledger.append((seq, str(memory_id), project, action, actor, ts, digest, prev, tag))
        payloads.append((seq, body))
        prev, before = tag, after
    fields = (
        memory_id, project, type_, text, snapshot["content_hash"], CONFIDENCE, status, chunk,
        snapshot["reinforcement_count"], successor, created, moment, reinforced,
    )  # fmt: skip
    return (*fields, RowMacs(key).mac("memory", fields)), ledger, payloads
