"""`memwarden audit checkpoint | prove | export | rebuild-tree`, and reading a published
checkpoint for `audit verify --checkpoint FILE|URL`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from memwarden.cli.common import (
    JsonFlag,
    emit_json,
    fail,
    guard,
    progress_bar,
    say,
    session,
    show_progress,
    warn,
)
from memwarden.core.checkpoints import CheckpointVerdict
from memwarden.core.service import Memwarden
from memwarden.errors import InvalidInputError

KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The verifier key you kept (NAME+HASH+KEY, as `init` printed it), or a file "
        "holding it. Default: this store's own key.",
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write the document here instead of stdout.")
]


def read_checkpoint(source: str) -> str:
    """A checkpoint from a file or an http(s) URL; a clear error when it cannot be read."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=15.0, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise InvalidInputError(f"cannot fetch the checkpoint from {source}: {exc}") from exc
        if response.status_code != 200:
            raise InvalidInputError(
                f"cannot fetch the checkpoint from {source}: HTTP {response.status_code}"
            )
        return response.text
    path = Path(source)
    if not path.is_file():
        raise InvalidInputError(f"no checkpoint file {source}")
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the checkpoint {source}: {exc}") from exc


def read_key(key: str | None) -> str | None:
    if key is None:
        return None
    path = Path(key)
    if "+" not in key or path.is_file():
        try:
            return path.read_text("utf-8").strip()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the verifier key {key}: {exc}") from exc
    return key


def _write(document: dict[str, Any], out: Path | None) -> None:
    if out is None:
        emit_json(document)
        return
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    say(f"written to {out}")


def checkpoint(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Sign the ledger's tree head, print it and hand it to the publishers. Exit 1 when a
    publisher failed (the checkpoint is still made and kept)."""
    with session(ctx) as mw:
        bar = show_progress(json_out)
        with progress_bar(bar, "hashing new ledger rows", None) as tick:
            result = mw.checkpoint("manual", tick)
    if json_out:
        emit_json(result.to_dict())
    else:
        typer.echo(result.record.note, nl=False)
    for outcome in result.publications:
        if not outcome.ok:
            warn(f"not published to {outcome.publisher} ({outcome.target}): {outcome.error}")
    if not result.published_ok:
        fail("the checkpoint was made but not every publisher took it (an alert was raised)")


def prove(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The ledger row (seq).", min=1)],
    checkpoint_file: Annotated[
        str | None,
        typer.Option(
            "--checkpoint", help="A published checkpoint (file or URL); default the latest."
        ),
    ] = None,
    key: KeyOpt = None,
    out: OutOpt = None,
) -> None:
    """An inclusion proof of one ledger row in a checkpoint's tree, as a JSON document that
    `python -m memwarden.tlog verify` checks offline."""
    with guard():
        note = read_checkpoint(checkpoint_file) if checkpoint_file else None
        verifier = read_key(key)
    with session(ctx) as mw:
        document = mw.prove(seq, note, verifier)
    _write(document, out)


def extends(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="An older published checkpoint (file or URL).")],
    key: KeyOpt = None,
    out: OutOpt = None,
) -> None:
    """A consistency proof that the latest checkpoint extends an older published one, as a
    JSON document that `python -m memwarden.tlog verify` checks offline."""
    with guard():
        note = read_checkpoint(old)
        verifier = read_key(key)
    with session(ctx) as mw:
        document = mw.prove_consistency(note, verifier)
    _write(document, out)


def export(
    ctx: typer.Context,
    memory_id: Annotated[int, typer.Argument(help="The memory's id.", min=1)],
    out: OutOpt = None,
) -> None:
    """One memory's evidence bundle: ledger rows, payloads (or erasure markers), inclusion
    proofs, the signed checkpoint and a signed attestation."""
    with session(ctx) as mw:
        document = mw.export_evidence(memory_id)
    _write(document, out)


def rebuild_tree(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the stored tree with the recomputed one.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Recompute the Merkle tree from every ledger row and compare it with the stored tree.
    Exit 1 when they differ (and --yes was not given)."""
    with session(ctx) as mw:
        bar = show_progress(json_out)
        with progress_bar(bar, "rebuilding the tree", mw.anchor().seq if bar else None) as tick:
            report = mw.rebuild_tree(repair=yes, progress=tick)
    if json_out:
        emit_json(
            {
                "ok": report.ok,
                "size": report.size,
                "root": report.root.hex(),
                "stored_size": report.stored_size,
                "mismatches": report.mismatches,
                "rows_per_second": round(report.rows_per_second),
                "repaired": yes,
            }
        )
    else:
        say(
            f"tree of {report.size} rows rebuilt in {report.seconds:.3f} s "
            f"({report.rows_per_second:,.0f} rows/s); root {report.root.hex()}"
        )
        for line in report.mismatches:
            warn(line)
        if yes:
            say("the stored tree now matches the ledger")
    if not report.ok and not yes:
        fail("the stored tree differs from the ledger: rerun with --yes to replace it")


def load_published(source: str, key: str | None) -> tuple[str, str | None]:
    """The checkpoint and verifier key `audit verify --checkpoint` was given, read up front."""
    with guard():
        return read_checkpoint(source), read_key(key)


def check_published(
    mw: Memwarden, published: tuple[str, str | None], bar: bool
) -> CheckpointVerdict:
    """The checkpoint half of `audit verify --checkpoint` (after the chain walk)."""
    note, verifier = published
    with progress_bar(bar, "checking the checkpoint", mw.anchor().seq if bar else None) as tick:
        return mw.verify_checkpoint(note, verifier, tick)


def refuse_failed(verdict: CheckpointVerdict) -> None:
    if not verdict.ok:
        fail(f"checkpoint check failed: {verdict.reason}")


def report_verdict(verdict: CheckpointVerdict, json_out: bool) -> None:
    for line in verdict.tree_mismatches:
        warn(f"stored Merkle tree: {line} (run `memwarden audit rebuild-tree`)")
    if not json_out:
        say(
            f"checkpoint ok: the ledger's first {verdict.checkpoint_size} rows are the ones "
            f"published at {verdict.checkpoint_time}, and its {verdict.ledger_size} rows extend "
            f"them (consistency proof of {len(verdict.proof)} hashes)"
        )
