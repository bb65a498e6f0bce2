"""`memwarden memory ...`: keep, evolve and rewind memories along their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from memwarden.cli import render
from memwarden.cli.common import JsonFlag, NoteOpt, emit_json, say, session
from memwarden.core.erasure import EraseReceipt
from memwarden.core.memories import DEFAULT_CONFIDENCE
from memwarden.core.models import Memory
from memwarden.core.service import Memwarden

app = typer.Typer(help="Memories: typed statements with a lifecycle.", no_args_is_help=True)

MemoryId = Annotated[int, typer.Argument(help="The memory's id.", min=1)]
MetadataOpt = Annotated[
    str | None,
    typer.Option(
        "--metadata",
        help='A JSON object, e.g. \'{"team": "core"}\' (at most 8 KiB, 4 levels deep).',
    ),
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        "-w",
        help="Only memories whose metadata KEY holds VALUE: KEY=VALUE (repeatable, all must hold).",
    ),
]


def _done(memory: Memory, json_out: bool, message: str) -> None:
    if json_out:
        emit_json(memory.to_dict())
    else:
        say(message)


@app.command("add")
def add(
    ctx: typer.Context,
    content: Annotated[str, typer.Argument(help="The statement (quote it).")],
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    type_: Annotated[
        str, typer.Option("--type", "-t", help="identity, preference, project, episodic, ...")
    ],
    confidence: Annotated[
        float, typer.Option("--confidence", "-c", help="Between 0 and 1.")
    ] = DEFAULT_CONFIDENCE,
    status: Annotated[
        str, typer.Option("--status", help="candidate (awaits triage) or active.")
    ] = "candidate",
    source_chunk: Annotated[
        int | None, typer.Option("--source-chunk", help="The source chunk it comes from.")
    ] = None,
    note: NoteOpt = None,
    metadata: MetadataOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Add a memory; one that restates a live memory reinforces it instead."""
    with session(ctx) as mw:
        result = mw.remember(
            project,
            content,
            type_,
            confidence,
            status=status,
            source_chunk_id=source_chunk,
            note=note,
            metadata=metadata,
        )
    memory = result.memory
    if json_out:
        emit_json(result.to_dict())
    elif result.reinforced:
        say(
            f"reinforced memory {memory.id} ({memory.status}): it already said this; "
            f"reinforced {memory.reinforcement_count} time(s)"
        )
    else:
        say(f"created memory {memory.id} ({memory.status}, {memory.type})")


@app.command("list")
def list_(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    status: Annotated[str | None, typer.Option("--status", help="e.g. candidate, active.")] = None,
    type_: Annotated[str | None, typer.Option("--type", "-t")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-500).")] = 50,
    after: Annotated[
        int | None, typer.Option("--after", help="Cursor: ids below this one (next page).")
    ] = None,
    where: WhereOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """List memories, newest first."""
    with session(ctx) as mw:
        items = mw.list_memories(
            project=project, status=status, type=type_, limit=limit, after_id=after, where=where
        )
    if json_out:
        emit_json([m.to_dict() for m in items])
    else:
        render.memories(items)


@app.command("show")
def show(ctx: typer.Context, memory_id: MemoryId, json_out: JsonFlag = False) -> None:
    """Show one memory."""
    with session(ctx) as mw:
        memory = mw.get(memory_id)
    if json_out:
        emit_json(memory.to_dict())
    else:
        render.memory(memory)


@app.command("update")
def update(
    ctx: typer.Context,
    memory_id: MemoryId,
    content: Annotated[str | None, typer.Option("--content", help="New text.")] = None,
    type_: Annotated[str | None, typer.Option("--type", "-t", help="New type.")] = None,
    confidence: Annotated[float | None, typer.Option("--confidence", "-c")] = None,
    metadata: Annotated[
        str | None,
        typer.Option(
            "--metadata", help="A JSON object replacing the whole metadata ('{}' clears it)."
        ),
    ] = None,
    note: NoteOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Change a live memory's content, type, confidence or metadata (before and after are
    audited)."""
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("content", content),
            ("type", type_),
            ("confidence", confidence),
            ("metadata", metadata),
        )
        if value is not None
    }
    with session(ctx) as mw:
        memory = mw.update(memory_id, note=note, **changes)
    _done(memory, json_out, f"updated memory {memory.id}")


def _transition(name: str, verb: str, call: Callable[[Memwarden, int, str | None], Memory]) -> None:
    def command(
        ctx: typer.Context, memory_id: MemoryId, note: NoteOpt = None, json_out: JsonFlag = False
    ) -> None:
        with session(ctx) as mw:
            memory = call(mw, memory_id, note)
        _done(memory, json_out, f"{verb} memory {memory.id}: now {memory.status}")

    command.__name__ = name
    command.__doc__ = f"{name.capitalize()} a memory (audited)."
    app.command(name)(command)


_transition("promote", "promoted", lambda mw, i, n: mw.promote(i, n))
_transition("reject", "rejected", lambda mw, i, n: mw.reject(i, n))
_transition("invalidate", "invalidated", lambda mw, i, n: mw.invalidate(i, n))
_transition("expire", "expired", lambda mw, i, n: mw.expire(i, n))
_transition("reinforce", "reinforced", lambda mw, i, n: mw.reinforce(i, n))


@app.command("supersede")
def supersede(
    ctx: typer.Context,
    memory_id: MemoryId,
    by: Annotated[
        int | None, typer.Option("--by", help="An active memory that replaces it.")
    ] = None,
    content: Annotated[
        str | None, typer.Option("--content", help="Text of a new memory that replaces it.")
    ] = None,
    note: NoteOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Replace an active memory by another one (--by ID) or by new text (--content)."""
    if (by is None) == (content is None):
        raise typer.BadParameter("give exactly one of --by ID or --content TEXT", param_hint="--by")
    with session(ctx) as mw:
        old, successor = mw.supersede(memory_id, by=by, content=content, note=note)
    if json_out:
        emit_json({"superseded": old.to_dict(), "successor": successor.to_dict()})
    else:
        say(f"memory {old.id} superseded by memory {successor.id}")


@app.command("revert")
def revert(
    ctx: typer.Context,
    memory_id: MemoryId,
    to: Annotated[int, typer.Option("--to", help="The ledger sequence number to go back to.")],
    note: NoteOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Put a memory back as it was at one of its ledger rows (itself audited)."""
    with session(ctx) as mw:
        memory = mw.revert(memory_id, to, note)
    _done(memory, json_out, f"reverted memory {memory.id} to its version at row {to}")


Sources = Annotated[
    str,
    typer.Option(
        "--sources",
        help="The interactions and chunks it came from: all (blank them), span (cut only the "
        "erased text out) or keep.",
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Wait until no old copy is left on disk (scrubbed).")
]
WaitTimeout = Annotated[
    float, typer.Option("--timeout", help="Seconds --wait waits at most.", min=0, max=3600)
]


def _receipt_line(receipt: EraseReceipt) -> str:
    erased = receipt.erased
    what = (
        f"{len(erased.memories)} memories, {len(erased.interactions)} interactions, "
        f"{len(erased.chunks)} chunks, {len(erased.oplog_rows)} operation-log rows, "
        f"{len(erased.alerts)} alerts"
    )
    if receipt.done:
        state = "scrubbed: no old copy is left on disk"
    else:
        state = (
            f"pending: an old copy still waits in {', '.join(receipt.pending)} until readers "
            f"finish (`memwarden memory erase-status` shows when it is gone)"
        )
    return f"erasure {receipt.id}: {what}; {state}"


def _exit_if_pending(receipt: EraseReceipt, waited: bool) -> None:
    if waited and not receipt.done:
        raise typer.Exit(3)


@app.command("erase")
def erase(
    ctx: typer.Context,
    memory_id: MemoryId,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded; the content is not).")],
    sources: Sources = "all",
    wait: Wait = False,
    timeout: WaitTimeout = 60.0,
    json_out: JsonFlag = False,
) -> None:
    """Erase a memory's content everywhere it lives: the tables, the index, the ledger payloads,
    its source interactions and chunks, logs and alerts. Exit 3 when --wait timed out."""
    with session(ctx) as mw:
        receipt = mw.erase(memory_id, reason, sources=sources, wait=timeout if wait else None)
    assert receipt.memory is not None
    if json_out:
        emit_json({**receipt.memory.to_dict(), "receipt": receipt.to_dict()})
    else:
        say(f"erased memory {memory_id}: its content is gone; the erasure is recorded")
        say(_receipt_line(receipt))
    _exit_if_pending(receipt, wait)


@app.command("erase-status")
def erase_status(
    ctx: typer.Context,
    memory_id: Annotated[
        int | None, typer.Argument(help="The erased memory's id.", min=1, show_default=False)
    ] = None,
    receipt_id: Annotated[
        int | None, typer.Option("--receipt", help="A receipt's id instead.", min=1)
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Whether an erasure is complete on disk (scrubbed) or still pending."""
    if (memory_id is None) == (receipt_id is None):
        raise typer.BadParameter("give a memory id or --receipt ID", param_hint="MEMORY_ID")
    with session(ctx) as mw:
        receipt = mw.erase_status(memory_id=memory_id, receipt_id=receipt_id)
    if json_out:
        emit_json(receipt.to_dict())
    else:
        say(_receipt_line(receipt))


@app.command("erase-matching")
def erase_matching(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", "-p", help="A project.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="The actor who wrote them (ledger).")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Text they contain (any case).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded). Needed unless --dry-run.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List exactly what would go; change nothing.")
    ] = False,
    sources: Sources = "all",
    wait: Wait = False,
    timeout: WaitTimeout = 60.0,
    json_out: JsonFlag = False,
) -> None:
    """Right to be forgotten: erase every memory, interaction and chunk matching all of the
    given criteria (and the sources of those memories). Try --dry-run first."""
    with session(ctx) as mw:
        if dry_run:
            selection = mw.erase_preview(project=project, actor=actor, query=query, sources=sources)
            if json_out:
                emit_json(selection.to_dict())
            else:
                for name, ids in selection.to_dict().items():
                    say(f"{name.replace('_', ' ')}: {', '.join(map(str, ids)) or '-'}")
            return
        if reason is None:
            raise typer.BadParameter("--reason is needed (or --dry-run)", param_hint="--reason")
        receipt = mw.erase_matching(
            reason,
            project=project,
            actor=actor,
            query=query,
            sources=sources,
            wait=timeout if wait else None,
        )
    if json_out:
        emit_json(receipt.to_dict())
    else:
        say(_receipt_line(receipt))
    _exit_if_pending(receipt, wait)


@app.command("erase-scrub")
def erase_scrub(
    ctx: typer.Context,
    rewrite: Annotated[
        bool,
        typer.Option(
            "--rewrite",
            help="PostgreSQL: rewrite the erased tables whatever their size (locks each while "
            "it is rewritten: for a quiet hour).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Finish pending erasures now (the server does it in the background). Exit 3 while any
    is still pending."""
    with session(ctx) as mw:
        left = mw.finish_scrubs(rewrite_any_size=rewrite)
    if json_out:
        emit_json({"pending": left})
    else:
        say("every erasure is scrubbed" if not left else f"{left} erasures still pending")
    if left:
        raise typer.Exit(3)
