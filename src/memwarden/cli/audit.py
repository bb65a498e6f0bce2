"""`memwarden audit ...`: verify the ledger, anchor it, and travel through a memory's past."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.audit.verify import VerifyReport, parse_anchor
from memwarden.audit.witness import Head
from memwarden.cli import checkpoint as checkpoint_cli
from memwarden.cli import render
from memwarden.cli.common import (
    JsonFlag,
    emit_json,
    fail,
    guard,
    parse_time,
    progress_bar,
    say,
    session,
    show_progress,
)

app = typer.Typer(
    help="The mutation ledger: verify, anchor, history, time travel.", no_args_is_help=True
)

MemoryId = Annotated[int, typer.Argument(help="The memory's id.", min=1)]
AnchorOpt = Annotated[
    str | None,
    typer.Option("--anchor", help="SEQ:TAG printed earlier by `memwarden audit anchor`."),
]


def _anchor(text: str | None) -> Head | None:
    if text is None:
        return None
    with guard():
        return parse_anchor(text)


def _head(head: Head) -> dict[str, object]:
    return {"seq": head.seq, "tag": head.tag, "anchor": f"{head.seq}:{head.tag}"}


def _broken(report: VerifyReport) -> str:
    where = f"at row {report.first_bad_seq}" if report.first_bad_seq is not None else ""
    return f"ledger broken {where}: {report.reason} ({report.rows_checked} rows checked)"


@app.command("verify")
def verify(
    ctx: typer.Context,
    from_seq: Annotated[int, typer.Option("--from", min=1, help="Start at this row.")] = 1,
    anchor: AnchorOpt = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="A published checkpoint (file or URL): the ledger must still hold and extend it.",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="The checkpoint's verifier key (default this store's)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Re-derive every tag and check the head witness (and an anchor, and a published
    checkpoint). Exit 1 when broken."""
    mark = _anchor(anchor)
    source = checkpoint_cli.load_published(checkpoint, key) if checkpoint is not None else None
    verdict = None
    # With an anchor the witness may be missing: that is how a moved database is recovered.
    with session(ctx, quick_check=False, require_witness=mark is None) as mw:
        use_witness = mark is None or mw.settings.resolved_witness_file.exists()
        bar = show_progress(json_out)
        total = max(mw.anchor().seq - from_seq + 1, 0) if bar else None
        with progress_bar(bar, "verifying", total) as tick:
            report = mw.verify(from_seq, mark, tick, use_witness=use_witness)
        key_file = mw.settings.resolved_ledger_key_file
        if source is not None and report.ok:
            verdict = checkpoint_cli.check_published(mw, source, bar)
    if json_out:
        data = {**report.to_dict(), "key_file": str(key_file)}
        if verdict is not None:
            data["checkpoint"] = verdict.to_dict()
        emit_json(data)
    if not report.ok:
        fail(f"{_broken(report)}; key {report.key_fingerprint} from {key_file}")
    if verdict is not None:
        checkpoint_cli.refuse_failed(verdict)
    if not json_out:
        head = report.head
        against = " and ".join(report.checked_against) or "nothing beyond the chain"
        say(
            f"ledger ok: {report.rows_checked} rows checked in {report.seconds:.3f} s "
            f"({report.rows_per_second:,.0f} rows/s); checked against {against}"
        )
        if head is not None:
            say(f"head: {head.seq}:{head.tag}")
        say(f"key: {report.key_fingerprint} ({key_file})")
    if verdict is not None:
        checkpoint_cli.report_verdict(verdict, json_out)


@app.command("anchor")
def anchor(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Print the ledger head as SEQ:TAG: keep it off this machine, verify against it later."""
    with session(ctx) as mw:
        head = mw.anchor()
    if json_out:
        emit_json(_head(head))
    else:
        say(f"{head.seq}:{head.tag}")


@app.command("reset-witness")
def reset_witness(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: rewrite the witness.")] = False,
    anchor: AnchorOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Rewrite a missing or stale witness at the current head, after the chain verifies."""
    if not yes:
        raise typer.BadParameter(
            "this rewrites the ledger witness at the current head; verify against an anchor "
            "first, then pass --yes",
            param_hint="--yes",
        )
    mark = _anchor(anchor)
    with session(ctx, quick_check=False, require_witness=False) as mw:
        report = mw.verify(1, mark, use_witness=False)
        if not report.ok:
            fail(f"refusing to reset the witness: {_broken(report)}")
        head = mw.reset_witness(force=mark is not None)
    if json_out:
        emit_json(_head(head))
    else:
        say(f"witness reset at {head.seq}:{head.tag}")


@app.command("history")
def history(ctx: typer.Context, memory_id: MemoryId, json_out: JsonFlag = False) -> None:
    """Every ledger row of one memory, oldest first."""
    with session(ctx) as mw:
        records = mw.history(memory_id)
    if json_out:
        emit_json([r.to_dict() for r in records])
    else:
        render.history(records)


@app.command("readers")
def readers(
    ctx: typer.Context,
    memory_id: MemoryId,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 200,
    json_out: JsonFlag = False,
) -> None:
    """Who was served one memory (recall, context, get), newest first, and which version."""
    with session(ctx) as mw:
        served = mw.readers(memory_id, limit)
    if json_out:
        emit_json([s.to_dict() for s in served])
        return
    if not served:
        say(f"memory {memory_id} was not served to anyone (within the retention period)")
        return
    for s in served:
        version = f"seq {s.seq}" if s.seq is not None else "version unknown"
        who = f"{s.actor} (key {s.key_name})" if s.key_name else s.actor
        say(f"{s.served_at:%Y-%m-%d %H:%M:%S}  {s.operation:<7}  {version:<12}  {who}")


@app.command("as-of")
def as_of(
    ctx: typer.Context,
    memory_id: MemoryId,
    at: Annotated[str, typer.Option("--at", help="ISO-8601 time; without a zone it is UTC.")],
    json_out: JsonFlag = False,
) -> None:
    """The memory as it was at a time."""
    with guard():
        moment = parse_time(at, "time")
    with session(ctx) as mw:
        snapshot = mw.as_of(memory_id, moment)
    if json_out:
        emit_json({"memory_id": memory_id, "at": moment.isoformat(), "snapshot": snapshot})
    elif snapshot is None:
        say(f"memory {memory_id} has no recorded version at {moment.isoformat()} (erased)")
    else:
        render.snapshot(snapshot)


@app.command("diff")
def diff(
    ctx: typer.Context,
    memory_id: MemoryId,
    from_seq: Annotated[int, typer.Option("--from", help="The older ledger row.")],
    to_seq: Annotated[int, typer.Option("--to", help="The newer ledger row.")],
    json_out: JsonFlag = False,
) -> None:
    """What changed, field by field, between two versions of a memory."""
    with session(ctx) as mw:
        changes = mw.diff(memory_id, from_seq, to_seq)
    if json_out:
        emit_json([{"field": c.field, "before": c.before, "after": c.after} for c in changes])
    else:
        render.changes(changes)


@app.command("blame")
def blame(ctx: typer.Context, memory_id: MemoryId, json_out: JsonFlag = False) -> None:
    """For each field of a memory: who set it, when, at which ledger row."""
    with session(ctx) as mw:
        lines = mw.blame(memory_id)
    if json_out:
        emit_json(lines)
    else:
        render.blame(lines)


@app.command("recent")
def recent(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option("--actor", help="e.g. cli:alice")] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. promoted")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 (UTC if no zone).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601 (UTC if no zone).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    json_out: JsonFlag = False,
) -> None:
    """The latest ledger rows across every entity, newest first."""
    with guard():
        start = parse_time(since, "--since time") if since else None
        end = parse_time(until, "--until time") if until else None
    with session(ctx) as mw:
        records = mw.recent(
            actor=actor, action=action, project=project, since=start, until=end, limit=limit
        )
    if json_out:
        emit_json([r.to_dict() for r in records])
    else:
        render.recent(records)
