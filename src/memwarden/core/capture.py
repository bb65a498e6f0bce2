"""Captured interactions: one agent exchange (prompt, response, client, time) per row.

Interactions are the raw material of extraction. Capturing one is a mutation like any other:
one transaction, one ledger entry (entity ``interaction``, action ``captured``). The ledger
keeps the interaction's metadata and a digest of its text, not the text itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, text

from memwarden.config import Settings
from memwarden.core import validate
from memwarden.core.runtime import Mutation, Runtime
from memwarden.db import schema
from memwarden.errors import InvalidInputError, NotFoundError

T = schema.interactions
MAX_CLIENT_CHARS = 200
MAX_LIST_LIMIT = 500
IMPORT_BATCH = 500
# A given time may run ahead of ours by clock skew, not more: a time from the future would
# sort an exchange after ones that happened later.
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Interaction ids must be handed out in commit order, or the extraction watermark could pass
# over one that commits late: captures serialise on this lock on PostgreSQL (SQLite's writers
# already do).
CAPTURE_LOCK_ID = 0x6D656D_0007


@dataclass(frozen=True)
class Interaction:
    id: int
    project: str
    prompt: str
    response: str
    client: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Interaction:
        return cls(
            id=int(row.id),
            project=row.project,
            prompt=row.prompt,
            response=row.response,
            client=row.client,
            created_at=row.created_at,
        )

    def snapshot(self) -> dict[str, Any]:
        """What the ledger keeps: metadata and digests (the text stays in its row)."""
        return {
            "id": self.id,
            "project": self.project,
            "client": self.client,
            "created_at": self.created_at.isoformat(),
            "prompt_chars": len(self.prompt),
            "response_chars": len(self.response),
            "prompt_sha256": _sha(self.prompt),
            "response_sha256": _sha(self.response),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "prompt": self.prompt,
            "response": self.response,
            "client": self.client,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class NewInteraction:
    """A validated interaction, not yet stored."""

    project: str
    prompt: str
    response: str
    client: str
    created_at: datetime | None


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


@dataclass
class ImportReport:
    captured: list[int] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    blank_lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "captured": len(self.captured),
            "first_id": self.captured[0] if self.captured else None,
            "last_id": self.captured[-1] if self.captured else None,
            "errors": [e.to_dict() for e in self.errors],
            "blank_lines": self.blank_lines,
        }


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def validate_interaction(
    settings: Settings,
    project: Any,
    prompt: Any,
    response: Any,
    client: Any = "",
    created_at: Any = None,
) -> NewInteraction:
    """Check one interaction's fields; every refusal names the field and the limit."""
    if not isinstance(project, str) or not project.strip():
        raise InvalidInputError("an interaction needs a project")
    validate.project_name(project)
    for name, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str):
            raise InvalidInputError(f"the {name} must be text, not {type(value).__name__}")
        if not value.strip():
            raise InvalidInputError(f"the {name} is empty")
        if "\x00" in value:
            raise InvalidInputError(f"the {name} contains a NUL character")
    try:
        size = len(prompt.encode("utf-8")) + len(response.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInputError(
            "the interaction is not valid Unicode text (lone surrogate)"
        ) from None
    if size > settings.max_interaction_bytes:
        raise InvalidInputError(
            f"the interaction is {size} bytes, over the maximum of "
            f"{settings.max_interaction_bytes} (MEMWARDEN_MAX_INTERACTION_BYTES)"
        )
    if client is None:
        client = ""
    if not isinstance(client, str) or len(client) > MAX_CLIENT_CHARS or not client.isprintable():
        raise InvalidInputError(
            f"the client must be a printable name of at most {MAX_CLIENT_CHARS} characters"
        )
    return NewInteraction(project, prompt, response, client.strip(), _moment(created_at))


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInputError(
                f"malformed time {value!r}: expected ISO-8601, e.g. 2026-05-01T12:00:00Z"
            ) from None
    else:
        raise InvalidInputError(f"the time must be an ISO-8601 string, not {type(value).__name__}")
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-05:00 is past the last representable UTC time
        raise InvalidInputError(f"the time {value!r} is out of range") from None
    if moment > datetime.now(UTC) + MAX_FUTURE_SKEW:
        minutes = int(MAX_FUTURE_SKEW.total_seconds() // 60)
        raise InvalidInputError(
            f"the time {moment.isoformat()} is more than {minutes} minutes in the future"
        )
    return moment


def _store(m: Mutation, items: Sequence[NewInteraction]) -> list[Interaction]:
    if m.conn.dialect.name == "postgresql":
        m.conn.execute(text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": CAPTURE_LOCK_ID})
    rows = [
        {
            "project": item.project,
            "prompt": item.prompt,
            "response": item.response,
            "client": item.client,
            "created_at": item.created_at or m.now,
        }
        for item in items
    ]
    ids = (
        m.conn.execute(insert(T).returning(T.c.id, sort_by_parameter_order=True), rows)
        .scalars()
        .all()
    )
    stored = []
    for new_id, item in zip(ids, items, strict=True):
        interaction = Interaction(
            int(new_id),
            item.project,
            item.prompt,
            item.response,
            item.client,
            item.created_at or m.now,
        )
        m.record(
            "interaction",
            interaction.id,
            interaction.project,
            "captured",
            None,
            interaction.snapshot(),
        )
        stored.append(interaction)
    return stored


def capture(
    rt: Runtime,
    project: str,
    prompt: str,
    response: str,
    client: str = "",
    created_at: datetime | str | None = None,
) -> Interaction:
    item = validate_interaction(rt.settings, project, prompt, response, client, created_at)
    with rt.mutation() as m:
        validate.project_exists(m.conn, item.project)
        return _store(m, [item])[0]


def _known_projects(conn: Connection, names: set[str]) -> set[str]:
    P = schema.projects
    return set(conn.execute(select(P.c.name).where(P.c.name.in_(sorted(names)))).scalars())


def _parse_line(
    settings: Settings, raw: str | bytes, default_project: str | None
) -> NewInteraction:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    # Refuse a line that cannot fit before parsing it (JSON escapes take at most 6 characters
    # per byte of text).
    if len(raw) > 6 * settings.max_interaction_bytes + 4096:
        raise InvalidInputError(
            f"the line is {len(raw)} characters, over what an interaction may hold "
            "(MEMWARDEN_MAX_INTERACTION_BYTES)"
        )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:  # nested deeper than the parser's stack: a line, not the import
        raise InvalidInputError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"expected a JSON object, got {type(data).__name__}")
    missing = [name for name in ("prompt", "response") if name not in data]
    if missing:
        raise InvalidInputError(f"missing field(s): {', '.join(missing)}")
    project = data.get("project", default_project)
    if project is None:
        raise InvalidInputError("missing field: project (or give --project)")
    return validate_interaction(
        settings,
        project,
        data["prompt"],
        data["response"],
        data.get("client", ""),
        data.get("time", data.get("created_at")),
    )


def import_lines(
    rt: Runtime,
    lines: Iterable[str | bytes],
    *,
    default_project: str | None = None,
    batch_size: int = IMPORT_BATCH,
) -> ImportReport:
    """Capture JSON lines (``{"project", "prompt", "response", "client"?, "time"?}``).

    A bad line is reported with its number and skipped; the good lines are kept, committed in
    batches. Blank lines are skipped. Lines may be text or bytes (decoded as UTF-8 one by one,
    so one undecodable line is reported, not fatal)."""
    report = ImportReport()
    pending: list[tuple[int, NewInteraction]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            report.blank_lines += 1
            continue
        try:
            pending.append((number, _parse_line(rt.settings, raw, default_project)))
        except InvalidInputError as exc:
            report.errors.append(LineError(number, str(exc)))
            continue
        if len(pending) >= batch_size:
            _flush(rt, pending, report)
            pending = []
    if pending:
        _flush(rt, pending, report)
    report.errors.sort(key=lambda e: e.line)
    return report


def _flush(rt: Runtime, pending: list[tuple[int, NewInteraction]], report: ImportReport) -> None:
    with rt.mutation() as m:
        known = _known_projects(m.conn, {item.project for _, item in pending})
        good = []
        for number, item in pending:
            if item.project in known:
                good.append(item)
            else:
                report.errors.append(
                    LineError(number, f"unknown project {item.project!r}: create it first")
                )
        if good:
            report.captured.extend(i.id for i in _store(m, good))


def get(rt: Runtime, interaction_id: int) -> Interaction:
    with rt.read() as conn:
        row = conn.execute(select(T).where(T.c.id == interaction_id)).first()
    if row is None:
        raise NotFoundError(f"interaction {interaction_id} not found")
    return Interaction.from_row(row)


def list_interactions(
    rt: Runtime, *, project: str | None = None, after_id: int | None = None, limit: int = 50
) -> list[Interaction]:
    """Interactions newest first; ``after_id`` is the cursor (the last id of the last page)."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    query = select(T).order_by(T.c.id.desc()).limit(limit)
    if project is not None:
        query = query.where(T.c.project == project)
    if after_id is not None:
        query = query.where(T.c.id < after_id)
    with rt.read() as conn:
        return [Interaction.from_row(row) for row in conn.execute(query)]


def read_after(conn: Connection, project: str, after_id: int, limit: int) -> Iterator[Interaction]:
    """The project's interactions with an id above ``after_id``, oldest first."""
    query = select(T).where(T.c.project == project, T.c.id > after_id).order_by(T.c.id).limit(limit)
    for row in conn.execute(query):
        yield Interaction.from_row(row)
