"""Replaying the alerts file at start-up: alerts that reached the file but never the database.

``emit`` writes an alert's file line at once and the writer thread commits its row a moment
later; a process killed in between (SIGKILL, power loss) leaves the alert in the file only,
never delivered. Each line names its alert (the emit id) and the database it was raised for,
and the transaction that stores an alert records its emit id (``recording``). So an
``Alerts`` with a store, on its writer thread before anything else, reads the newest lines of
the file and of its rotated backups (only as far back as needed) and stores the alerts of its
database whose emit id is missing, through the same path as a live alert (throttling, the
webhook outbox), at their original time.

Resolutions too: an alert stored firing whose resolution reached the file but not the
database (the database down when the problem cleared, or the alert itself stored only now,
by this replay) is resolved at the resolution's time, with its webhooks' resolved notice,
unless it was seen firing after that time. Without it such an alert stayed firing for good
(in the history, in ``doctor``, at every webhook).

Exact and idempotent: an alert already stored is skipped, here and again inside the storing
transaction (a line still queued by the live process that wrote it may be offered by both).
Bounded: nothing older than ``HORIZON`` and at most ``MAX_LINES`` lines and ``MAX_BYTES``
bytes are read. A torn line (a crash mid-write) and any line that is not an alert line are
skipped and counted, never fatal. Emit ids are pruned some time after the horizon, when no
line that old can be replayed any more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, select

from memwarden.db import schema
from memwarden.db.store import Store
from memwarden.observability.alerts import model, outbox
from memwarden.observability.logs import safely

log = structlog.get_logger("memwarden.alerts")

E = schema.alert_emits
A = schema.alerts

HORIZON = timedelta(hours=24)  # older lines are never replayed
KEEP = HORIZON + timedelta(hours=1)  # emit ids kept: the horizon, and a margin for clocks
MAX_LINES = 20_000
MAX_BYTES = 32 * 1024 * 1024
BLOCK = 64 * 1024
CHUNK = 500  # emit ids per lookup, alerts per stored batch
# Every line the file sink writes starts with its time. After a torn line the next process's
# line is appended to the torn bytes: it starts at this, and is read from there.
LINE_START = b'{"ts":'
RECOVERY_TRIES = 4  # a torn piece may hold a few of these (nested contexts): try a handful

RESOLVED_EVENT = "alert_resolved"  # the file line of a resolution (``Alerts.resolve``)

# Stores a batch of items the way the writer does; returns (stored, already stored).
WriteBatch = Callable[[list[outbox.Item]], tuple[int, int]]


@dataclass
class Report:
    lines: int = 0  # lines read
    candidates: int = 0  # alerts of this database within the horizon
    replayed: int = 0  # stored now (as new rows or folded into one)
    already: int = 0  # stored before, by the process that raised them or an earlier start
    failed: int = 0  # refused by the database (logged by the writer; tried at the next start)
    resolved: int = 0  # firing alerts resolved by a resolution read back
    torn: int = 0  # lines cut short by a crash mid-write
    garbage: int = 0  # lines that are not alert-file lines, or not a valid alert


def replay(
    store: Store,
    path: Path,
    backups: int,
    database_id: str,
    write: WriteBatch,
    now: datetime | None = None,
) -> Report:
    """Store the alerts of ``database_id`` that are in the alerts file but not the database,
    raised before ``now`` (the replaying process's start: later lines are live processes' own,
    this one's included, which they store themselves)."""
    report = Report()
    resolutions: dict[str, datetime] = {}
    alerts = scan(path, backups, database_id, now or datetime.now(UTC), report, resolutions)
    report.candidates = len(alerts)
    stored = known(store, [a.emit_id for a in alerts])
    missing = [a for a in alerts if a.emit_id not in stored]
    report.already = len(alerts) - len(missing)
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        new, already = write([outbox.Emit(alert) for alert in chunk])
        report.replayed += new
        report.already += already
        report.failed += len(chunk) - new - already
    report.resolved = _resolve(store, resolutions, write)
    # Silent when the file held nothing to do: this runs at every start of every command.
    if report.replayed or report.failed or report.torn or report.garbage or report.resolved:
        safely(log, "info", "alert_replay", path=str(path), **asdict(report))
    return report


def _resolve(store: Store, resolutions: dict[str, datetime], write: WriteBatch) -> int:
    """Resolve each firing alert that a resolution read back ends: raised and last seen at or
    before it (one raised again since is a new episode, left firing); returns how many. A
    read first: at most starts there is nothing to do."""
    due: list[outbox.Resolve] = []
    names = sorted(resolutions)
    for start in range(0, len(names), CHUNK):
        due.extend(
            outbox.Resolve(name, resolutions[name], alert_id=alert_id)
            for alert_id, name, raised, seen in _firing(store, names[start : start + CHUNK])
            if raised <= resolutions[name] and seen <= resolutions[name]
        )
    if not due:
        return 0
    write(list[outbox.Item](due))
    # What the write did (it checks each row again, under the fingerprint's lock).
    still = {row[0] for row in _firing(store, sorted({r.fingerprint for r in due}))}
    return sum(1 for r in due if r.alert_id not in still)


def _firing(store: Store, fingerprints: list[str]) -> list[tuple[int, str, datetime, datetime]]:
    """The firing alerts of these fingerprints: id, fingerprint, raised and last seen."""
    with store.read() as conn:
        rows = conn.execute(
            select(A.c.id, A.c.fingerprint, A.c.created_at, A.c.last_seen_at).where(
                A.c.fingerprint.in_(fingerprints), A.c.status == "firing"
            )
        ).all()
    return [(int(r.id), r.fingerprint, _utc(r.created_at), _utc(r.last_seen_at)) for r in rows]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def scan(
    path: Path,
    backups: int,
    database_id: str,
    now: datetime,
    report: Report,
    resolutions: dict[str, datetime] | None = None,
) -> list[model.Alert]:
    """The alerts of ``database_id`` raised from ``now - HORIZON`` until ``now``, oldest first,
    read from the newest line back through the rotated backups until the horizon or a bound;
    and into ``resolutions`` the newest resolution of each fingerprint in that span."""
    resolutions = {} if resolutions is None else resolutions
    since = now - HORIZON
    found: dict[str, model.Alert] = {}
    budget = MAX_BYTES
    files = [path, *(path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1))]
    for file in files:
        if report.lines >= MAX_LINES or budget <= 0:
            break
        try:
            done, budget = _scan_file(
                file, budget, database_id, since, now, report, found, resolutions
            )
        except FileNotFoundError:
            continue  # not rotated that far yet (or rotated away under us: read the next)
        except OSError as exc:  # fail-open: an unreadable file loses its replay, nothing else
            safely(log, "error", "alert_replay_unreadable", path=str(file), error=str(exc))
            continue
        if done:
            break
    # By time, not file order: lines of concurrent processes may interleave a little.
    return sorted(found.values(), key=lambda alert: alert.at)


def _scan_file(
    file: Path,
    budget: int,
    database_id: str,
    since: datetime,
    until: datetime,
    report: Report,
    found: dict[str, model.Alert],
    resolutions: dict[str, datetime],
) -> tuple[bool, int]:
    """Reads one file backwards; returns whether the horizon (or a bound) was reached, and
    the bytes left to read."""
    for raw, complete in _lines_backwards(file, budget):
        if report.lines >= MAX_LINES:
            return True, budget
        report.lines += 1
        budget -= len(raw) + 1
        record, recovered = _decode(raw)
        if record is None:
            if complete:
                report.garbage += 1
            else:
                report.torn += 1  # the end of the file, cut mid-write
            continue
        if recovered:
            report.torn += 1  # torn bytes before this line: the line itself is whole
        at = _time(record.get("ts"))
        if at is None or not isinstance(record.get("event"), str):
            report.garbage += 1
            continue
        if at < since:
            return True, budget  # every line before this one is older still
        if at >= until:
            continue  # raised since the replay began: a live writer stores it
        if record.get("database_id") != database_id:
            continue  # raised for no (or another) database
        fingerprint = record.get("fingerprint")
        if record["event"] == RESOLVED_EVENT and isinstance(fingerprint, str):
            fingerprint = model.clean_text(fingerprint)[:64]  # as ``Alerts.resolve`` stores it
            if at > resolutions.get(fingerprint, since):
                resolutions[fingerprint] = at
            continue
        if record["event"] != "alert":
            continue  # a test alert
        emit_id = record.get("emit_id")
        alert = (
            model.restore(
                record.get("severity"),
                record.get("title"),
                record.get("message"),
                record.get("context"),
                record.get("fingerprint"),
                at,
                emit_id,
            )
            if isinstance(emit_id, str)
            else None
        )
        if alert is None:
            report.garbage += 1
            continue
        found.setdefault(alert.emit_id, alert)  # a line read twice (rotated while reading)
    return budget <= 0, budget


def _lines_backwards(file: Path, budget: int) -> Iterator[tuple[bytes, bool]]:
    """The lines of ``file``, newest first, each with whether it ends in a newline (only the
    last one can fail to: a torn write). Reads at most ``budget`` bytes from the end; a line
    cut by that bound is not yielded."""
    with file.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        position = end
        head = b""  # the start of the file's part not yielded yet: maybe a partial line
        last = True
        while position > 0 and end - position < budget:
            size = min(BLOCK, position, budget - (end - position))
            position -= size
            handle.seek(position)
            parts = (handle.read(size) + head).split(b"\n")
            head = parts[0]
            for part in reversed(parts[1:]):
                if last:
                    last = False
                    if part:
                        yield part, False
                elif part:
                    yield part, True
        if position == 0 and head:
            yield head, not last


def _decode(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """The JSON object of one line, and whether it was found after torn bytes."""
    record = _object(raw)
    if record is not None:
        return record, False
    start = raw.find(LINE_START, 1)
    for _ in range(RECOVERY_TRIES):
        if start < 0:
            break
        record = _object(raw[start:])
        if record is not None:
            return record, True
        start = raw.find(LINE_START, start + 1)
    return None, False


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or absurdly nested): a garbage line
        return None
    return value if isinstance(value, dict) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def known(store: Store, emit_ids: list[str]) -> set[str]:
    """Which of these emit ids the database has stored (a read: no lock is taken)."""
    found: set[str] = set()
    for start in range(0, len(emit_ids), CHUNK):
        chunk = emit_ids[start : start + CHUNK]
        with store.read() as conn:
            found.update(conn.execute(select(E.c.emit_id).where(E.c.emit_id.in_(chunk))).scalars())
    return found


def prune(store: Store, now: datetime) -> int:
    """Forget the emit ids of alerts older than any line a replay reads; returns how many."""
    cutoff = now - KEEP
    # Look first, with a read: most of the time there is nothing to prune, and a write would
    # queue behind whatever transaction holds the write lock.
    with store.read() as conn:
        old = conn.execute(select(E.c.emit_id).where(E.c.emitted_at < cutoff).limit(1)).first()
    if old is None:
        return 0
    with store.write() as unit:
        return int(unit.conn.execute(delete(E).where(E.c.emitted_at < cutoff)).rowcount)
