"""`memwarden alert emit | list | test | dead | redeliver | resolve`: raise an alert, read the
history, test the webhooks, list the dead letters and queue them again, end a stale episode.

Each command waits (``--wait`` seconds at most) for the webhook deliveries it caused before it
exits; whatever is still undelivered then stays in the outbox for the next memwarden process
(``memwarden serve``, or the next command), and the output says so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from memwarden.cli.common import (
    JsonFlag,
    console,
    emit_json,
    fail,
    parse_time,
    say,
    session,
    warn,
)
from memwarden.observability.alerts import (
    SEVERITIES,
    AlertRecord,
    Alerts,
    DeliveryRecord,
    severity_of,
)
from memwarden.observability.alerts.outbox import pending_among as outbox_pending

app = typer.Typer(
    help="Alerts: raise one, list the history, test the webhooks.", no_args_is_help=True
)

Wait = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for webhook deliveries before exiting."),
]
RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _severity_filter(value: str | None) -> str | None:
    """A listing filter: an unknown severity matches nothing, so it is a usage error (raising
    one falls back to info instead, as ``emit_alert`` does)."""
    if value is None:
        return None
    level, unknown = severity_of(value)
    if unknown is not None:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(SEVERITIES)}")
    return level


def _context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--context")
        context[key.strip()] = value
    return context


def _since(text: str) -> datetime:
    """``2h``, ``30m``, ``7d`` ago, or an ISO-8601 time."""
    match = RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), UNITS[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: amount})
    return parse_time(text, "--since time")


def _outcome_line(delivery: DeliveryRecord, latency_ms: float | None) -> str:
    parts = [f"{delivery.target_kind:8} {delivery.target}: {delivery.state}"]
    detail = []
    if delivery.state == "pending" and delivery.next_attempt_at is not None:
        seconds = (delivery.next_attempt_at - datetime.now(UTC)).total_seconds()
        detail.append("trying now" if seconds <= 0 else f"next attempt in {seconds:.0f} s")
    if delivery.last_status is not None:
        detail.append(f"HTTP {delivery.last_status}")
    detail.append(f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}")
    if latency_ms is not None:
        detail.append(f"{latency_ms:.0f} ms")
    if delivery.attempts == 0 and delivery.state == "pending":
        return parts[0] + " (not attempted yet)"
    if delivery.state != "delivered" and delivery.last_error:
        detail.append(delivery.last_error)
    return parts[0] + f" ({', '.join(detail)})"


def _latencies(alerts: Alerts, deliveries: list[DeliveryRecord]) -> dict[int, float]:
    last: dict[int, float] = {}
    for attempt in alerts.attempts([d.id for d in deliveries]):
        last[attempt.delivery_id] = attempt.latency_ms
    return last


def _report(alerts: Alerts, deliveries: list[DeliveryRecord]) -> list[dict[str, object]]:
    latencies = _latencies(alerts, deliveries)
    for delivery in deliveries:
        say("  " + _outcome_line(delivery, latencies.get(delivery.id)))
    return [d.to_dict() | {"latency_ms": latencies.get(d.id)} for d in deliveries]


@app.command("emit")
def emit(
    ctx: typer.Context,
    title: Annotated[str, typer.Option("--title", help="One line: what is wrong.")],
    severity: Annotated[
        str,
        typer.Option(
            "--severity",
            help="info, warning or critical (anything else is sent as info, and the alert says so).",
        ),
    ] = "info",
    message: Annotated[str, typer.Option("--message", help="The details.")] = "",
    context: Annotated[
        list[str] | None, typer.Option("--context", help="key=value (repeatable).")
    ] = None,
    wait: Wait = 10.0,
    json_out: JsonFlag = False,
) -> None:
    """Raise an alert: log, alerts file, database and every configured webhook."""
    extra = _context(context or [])
    # The library decides the fallback (and notes it in the alert); this only reports it.
    level, unknown = severity_of(severity)
    if unknown is not None:
        warn(f"unknown severity {unknown!r}: the alert is raised as info and says so")
    # The session's own end waits no longer than --wait either: the alert is in the outbox.
    with session(ctx, drain=0.0) as mw:
        failures_before = mw.alerts.sink_failures
        fingerprint = mw.alerts.emit(severity, title, message, extra)
        mw.alerts.drain(wait)
        found = mw.alerts.history(limit=1, fingerprint=fingerprint)
        record = found[0] if found else None
        deliveries = mw.alerts.deliveries([record.id]) if record is not None else []
        ours = [d for d in deliveries if d.kind == "alert"]
        local_ok = mw.alerts.sink_failures == failures_before
        file_path = str(mw.alerts.file.path) if mw.alerts.file is not None else None
        # A repeat within the throttle window is folded into the first one: it has no
        # deliveries of its own (the next notice reports it).
        folded = record is not None and record.count > 1
        pending = [] if folded else [d for d in ours if d.state == "pending"]
        if json_out:
            emit_json(
                {
                    "fingerprint": fingerprint,
                    "alert": record.to_dict() if record else None,
                    "sinks": {
                        "log": "written" if local_ok else "see the log",
                        "file": file_path if local_ok else None,
                        "database": "stored" if record is not None else "not stored",
                    },
                    "deliveries": [d.to_dict() for d in ours],
                    "pending": len(pending),
                }
            )
        else:
            line = f"{level} alert raised (fingerprint {fingerprint[:12]})"
            if record is not None and folded:
                line += (
                    f": a repeat within the throttle window, alert {record.id} now x{record.count}"
                )
            say(line)
            if local_ok:
                say(f"  log: written; alerts file: written ({file_path or 'off'})")
            else:
                say("  log and alerts file: a sink failed (its error is in the log)")
            if not mw.alerts.targets:
                say("  no webhook configured (MEMWARDEN_ALERT_WEBHOOK)")
            elif not folded:
                _report(mw.alerts, ours)
        if record is None:
            warn(
                "the alert is in the log and the alerts file but not yet in the database: "
                "the next memwarden process replays it"
            )
        elif pending:
            warn(
                f"{len(pending)} of {len(ours)} webhook deliveries still pending after "
                f"{wait:g} s: they stay in the outbox and the next memwarden process "
                "(or `memwarden serve`) keeps retrying them"
            )


def _deliveries_summary(deliveries: list[DeliveryRecord]) -> str:
    counts: dict[str, int] = {}
    for delivery in deliveries:
        counts[delivery.state] = counts.get(delivery.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "-"


@app.command("list")
def list_(
    ctx: typer.Context,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity", help="Only info, warning or critical.", callback=_severity_filter
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO-8601 time, or 30m, 2h, 7d ago.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    json_out: JsonFlag = False,
) -> None:
    """The alert history, newest first (a repeat within the throttle window adds to a count)."""
    with session(ctx) as mw:
        start = _since(since) if since is not None else None
        records = mw.alerts.history(severity, start, limit)
        deliveries = mw.alerts.deliveries([r.id for r in records])
    by_alert: dict[int, list[DeliveryRecord]] = {}
    for delivery in deliveries:
        by_alert.setdefault(delivery.alert_id, []).append(delivery)
    if json_out:
        emit_json(
            [
                r.to_dict() | {"deliveries": [d.to_dict() for d in by_alert.get(r.id, [])]}
                for r in records
            ]
        )
        return
    _table(records, by_alert)


def _table(records: list[AlertRecord], by_alert: dict[int, list[DeliveryRecord]]) -> None:
    if not records:
        say("no alerts")
        return
    table = Table(show_lines=False)
    for name in ("id", "time (UTC)", "severity", "status", "count", "title", "webhooks"):
        table.add_column(name, overflow="fold")
    for r in records:
        title = " ".join(r.title.split())
        cells = (
            str(r.id),
            r.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.severity,
            r.status,
            str(r.count),
            title if len(title) <= 60 else title[:59] + "…",
            _deliveries_summary(by_alert.get(r.id, [])),
        )
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)


@app.command("test")
def test(ctx: typer.Context, wait: Wait = 30.0, json_out: JsonFlag = False) -> None:
    """Send a test alert to each webhook and print what happened to each delivery."""
    with session(ctx) as mw:
        if not mw.alerts.targets:
            fail("no webhook configured: set MEMWARDEN_ALERT_WEBHOOK (comma-separated URLs)")
        deliveries = mw.alerts.send_test(wait)
        if json_out:
            latencies = _latencies(mw.alerts, deliveries)
            emit_json([d.to_dict() | {"latency_ms": latencies.get(d.id)} for d in deliveries])
        else:
            say(f"test alert sent to {len(deliveries)} webhook(s):")
            _report(mw.alerts, deliveries)
    missed = [d for d in deliveries if d.state != "delivered"]
    if missed:
        fail(f"{len(missed)} of {len(deliveries)} webhooks did not confirm the test alert")


@app.command("dead")
def dead(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    json_out: JsonFlag = False,
) -> None:
    """The dead letters: deliveries given up (failed: a permanent answer; dead: the retry
    budget ran out), oldest first."""
    with session(ctx, drain=0.0) as mw:
        letters = mw.alerts.dead_letters(limit)
    if json_out:
        emit_json([d.to_dict() for d in letters])
        return
    if not letters:
        say("no dead letters")
        return
    table = Table(show_lines=False)
    for name in ("id", "alert", "state", "webhook", "attempts", "last error", "title"):
        table.add_column(name, overflow="fold")
    for d in letters:
        title = " ".join((d.title or "").split())
        cells = (
            str(d.id),
            str(d.alert_id),
            d.state,
            f"{d.target_kind} {d.target}",
            str(d.attempts),
            d.last_error or "-",
            title if len(title) <= 50 else title[:49] + "…",
        )
        table.add_row(*(Text(cell) for cell in cells))
    console().print(table)


@app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead-letter delivery ids (see `alert dead`).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    wait: Wait = 10.0,
    json_out: JsonFlag = False,
) -> None:
    """Queue dead letters again with a fresh retry budget, and wait for them (--wait)."""
    if bool(ids) == all_:
        raise typer.BadParameter("give delivery ids or --all (not both)")
    with session(ctx, drain=0.0) as mw:
        wanted = None if all_ else list(ids or [])
        queued = mw.alerts.redeliver(wanted)
        missing = sorted(set(wanted or []) - set(queued))
        if missing:
            warn(f"not dead letters (unknown, pending or delivered): {missing}")
        if queued:
            mw.alerts.drain(wait, everything=True)
        letters = {d.id: d for d in mw.alerts.dead_letters(100_000)}
        with mw.store.read() as conn:
            pending = outbox_pending(conn, queued)
    delivered = [i for i in queued if i not in letters and i not in pending]
    if json_out:
        emit_json(
            {
                "queued": queued,
                "delivered": delivered,
                "pending": sorted(pending),
                "dead_again": sorted(i for i in queued if i in letters),
            }
        )
    else:
        say(
            f"{len(queued)} dead letter(s) queued again: {len(delivered)} delivered, "
            f"{len(pending)} pending, {sum(i in letters for i in queued)} given up again"
        )
    if not queued and not all_:
        fail("none of these ids is a dead letter (see `memwarden alert dead`)")


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    fingerprint: Annotated[
        str,
        typer.Argument(help="The alert's fingerprint, e.g. fault:storage:locked (`doctor`)."),
    ],
    wait: Wait = 10.0,
    json_out: JsonFlag = False,
) -> None:
    """End the firing alerts of one fingerprint by hand: a fault episode whose process ended
    without ending it (killed), which `doctor` keeps reporting. Its webhooks get the resolved
    notice; a process that still has the fault raises it again."""
    with session(ctx, drain=0.0) as mw:
        firing = _firing(mw.alerts, fingerprint)
        if not firing:
            fail(
                f"no firing alert has the fingerprint {fingerprint!r} (see `memwarden alert list`)"
            )
        mw.alerts.resolve(fingerprint)
        mw.alerts.flush()
        mw.alerts.drain(wait)
        still = _firing(mw.alerts, fingerprint)
    if still:
        fail(f"{len(still)} alert(s) of {fingerprint!r} still firing: the database did not take it")
    if json_out:
        emit_json({"fingerprint": fingerprint, "resolved": [a.id for a in firing]})
        return
    say(f"resolved {len(firing)} firing alert(s) of {fingerprint}")


def _firing(alerts: Alerts, fingerprint: str) -> list[AlertRecord]:
    return [a for a in alerts.history(limit=1000, fingerprint=fingerprint) if a.status == "firing"]
