"""Replaying one memory's ledger against its current row (no database here).

A memory's ledger must start with its creation; each row's ``before`` must be the previous
row's ``after`` (a change made without its row leaves a seam); and the last ``after`` must be
the memory's current row exactly. The comparison is done on the canonical JSON text the ledger
stores (a snapshot is serialised one way only), so a healthy memory is checked without parsing
a single payload; only a mismatch is parsed, to say which fields differ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple

ERASED = "erased"
_AFTER = '{"after":'
_BEFORE = ',"before":'
_TAILS = (',"extra":', ',"note":')


class Step(NamedTuple):
    seq: int
    action: str
    body: str | None


class MemoryRow(NamedTuple):
    """A memory's current row, times already in the ledger's ISO form."""

    id: int
    project: str
    type: str
    content: str
    content_hash: str
    confidence: float
    status: str
    source_chunk_id: int | None
    reinforcement_count: int
    superseded_by: int | None
    created_at: str | None
    updated_at: str | None
    last_reinforced_at: str | None
    # The stored canonical JSON text of the metadata object (None: none, and no snapshot key).
    metadata: str | None = None

    @classmethod
    def of(cls, values: Any) -> MemoryRow:
        """From the values of a memory's snapshot columns, in this tuple's order (select them
        by name: the table also holds the row MAC, which is no part of the snapshot)."""
        values = tuple(values)
        (id_, project, type_, content, digest, confidence, status, chunk, count, successor,
         created, updated, reinforced) = values[:13]  # fmt: skip
        return cls(
            int(id_), project, type_, content, digest, float(confidence), status,
            None if chunk is None else int(chunk), int(count),
            None if successor is None else int(successor),
            iso(created), iso(updated), iso(reinforced),
            values[13] if len(values) > 13 else None,
        )  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """What ``core.models.Memory.snapshot`` gives for this row."""
        data = self._asdict()
        text = data.pop("metadata")
        if text is not None:
            try:
                data["metadata"] = json.loads(text)
            except ValueError:
                data["metadata"] = text  # edited into invalid JSON: differs from any replay
        return data

    def text(self) -> str:
        """``canonical_json(self.snapshot())``, written out: the replay's hot path."""
        return (
            f'{{"confidence":{float.__repr__(self.confidence)},'
            f'"content":{encode_basestring(self.content)},'
            f'"content_hash":{encode_basestring(self.content_hash)},'
            f'"created_at":{_text(self.created_at)},"id":{self.id},'
            f'"last_reinforced_at":{_text(self.last_reinforced_at)},'
            f"{_metadata(self.metadata)}"
            f'"project":{encode_basestring(self.project)},'
            f'"reinforcement_count":{self.reinforcement_count},'
            f'"source_chunk_id":{_number(self.source_chunk_id)},'
            f'"status":{encode_basestring(self.status)},'
            f'"superseded_by":{_number(self.superseded_by)},'
            f'"type":{encode_basestring(self.type)},"updated_at":{_text(self.updated_at)}}}'
        )


def iso(moment: datetime | str | None) -> str | None:
    """A stored time as the ledger writes it (``datetime.isoformat`` in UTC)."""
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite's text, naive UTC: "YYYY-MM-DD HH:MM:SS.ffffff"
        if len(moment) == 26 and moment[10] == " " and moment[19] == ".":
            fraction = "" if moment.endswith(".000000") else moment[19:]
            return f"{moment[:10]}T{moment[11:19]}{fraction}+00:00"
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).isoformat()
    return moment.astimezone(UTC).isoformat()


def _metadata(value: str | None) -> str:
    # Stored as canonical JSON (the ledger's own form), so it is copied in as it is; a row
    # edited into other text falls to the parsed comparison and is reported there.
    return "" if value is None else f'"metadata":{value},'


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def split_payload(body: str) -> tuple[str, str] | None:
    """The ``after`` and ``before`` texts of a canonical payload, without parsing it.

    Sound because a snapshot has none of the payload's keys and every quote inside a JSON
    string is escaped, so the first ``,"before":`` is the payload's own."""
    if not body.startswith(_AFTER):
        return None
    middle = body.find(_BEFORE, len(_AFTER))
    if middle < 0:
        return None
    start = middle + len(_BEFORE)
    for tail in _TAILS:
        end = body.find(tail, start)
        if end >= 0:
            return body[len(_AFTER) : middle], body[start:end]
    return None


def replay_problem(current: MemoryRow | None, steps: list[Step]) -> str | None:
    """Why the ledger does not replay to ``current`` (None when it does)."""
    if current is None:
        return f"its row is gone, though ledger row {steps[-1].seq} records it"
    if steps[0].action != "created":
        first = steps[0]
        return f"its history starts at ledger row {first.seq} ({first.action}), not its creation"
    if current.status == ERASED:  # the erasure blanked every earlier payload
        last = steps[-1]
        if last.action != ERASED or last.body is None:
            return "it is erased, but its last ledger row is not the erasure"
        return _final(split_payload(last.body), last.body, current)
    previous_after: str | None = None
    parts: tuple[str, str] | None = None
    for step in steps:
        if step.body is None:
            return f"ledger row {step.seq}'s payload is blank, though the memory was never erased"
        parts = split_payload(step.body)
        if parts is None:
            return _parsed_problem(current, steps)
        after, before = parts
        if previous_after is not None and before != previous_after:
            return f"a change before ledger row {step.seq} is missing from the ledger"
        previous_after = after
    last_body = steps[-1].body
    assert last_body is not None
    return _final(parts, last_body, current)


def _final(parts: tuple[str, str] | None, body: str, current: MemoryRow) -> str | None:
    if parts is not None and parts[0] == current.text():
        return None
    replayed = json.loads(body).get("after") or {}
    snapshot = current.snapshot()
    if replayed == snapshot:
        return None  # the same snapshot, serialised another way
    fields = sorted(k for k in set(replayed) | set(snapshot) if replayed.get(k) != snapshot.get(k))
    return f"its row differs from the replay of its ledger ({', '.join(fields)})"


def _parsed_problem(current: MemoryRow, steps: list[Step]) -> str | None:
    """The slow path for a payload not in canonical form: parse and compare snapshots."""
    previous: Any = None
    for index, step in enumerate(steps):
        assert step.body is not None
        payload = json.loads(step.body)
        if index and payload.get("before") != previous:
            return f"a change before ledger row {step.seq} is missing from the ledger"
        previous = payload.get("after")
    if previous != current.snapshot():
        return "its row differs from the replay of its ledger"
    return None
