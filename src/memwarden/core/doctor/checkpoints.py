"""Doctor checks for signed checkpoints: the signing key, the stored tree, publishing."""

from __future__ import annotations

from collections.abc import Iterable

from memwarden.audit import tree
from memwarden.audit.signing import SigningKeyError
from memwarden.core.doctor import Check, CheckResult, DoctorContext


def check_signing_key(ctx: DoctorContext) -> Iterable[CheckResult]:
    name = "checkpoint_signing_key"
    if (missing := ctx.need_store(name)) is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    path = ctx.settings.resolved_checkpoint_key_file
    try:
        verifier = ctx.memwarden.checkpoint_verifier_key()
    except SigningKeyError as exc:
        yield CheckResult(name, "fail", str(exc), {"path": str(path)})
        return
    yield CheckResult(
        name,
        "ok",
        f"{path}; verifier key {verifier}",
        {"path": str(path), "verifier_key": verifier},
    )


def check_tree(ctx: DoctorContext) -> Iterable[CheckResult]:
    name = "checkpoint_tree"
    if (missing := ctx.need_store(name)) is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    with ctx.memwarden.store.read() as conn:
        stored = tree.load_frontier(conn).size
        rows = tree.ledger_size(conn)
    data = {"tree_size": stored, "ledger_rows": rows}
    if stored > rows:
        yield CheckResult(
            name,
            "fail",
            f"the Merkle tree covers {stored} rows but the ledger holds {rows}: the ledger lost "
            "rows or was put back; run `memwarden audit verify --checkpoint` against a published "
            "checkpoint",
            data,
        )
        return
    yield CheckResult(name, "ok", f"tree covers {stored} of {rows} ledger rows", data)


def check_publishing(ctx: DoctorContext) -> Iterable[CheckResult]:
    name = "checkpoint_publishing"
    if (missing := ctx.need_store(name)) is not None:
        yield missing
        return
    assert ctx.memwarden is not None
    status = ctx.memwarden.checkpoint_status()
    latest = status["latest"]
    if not status["publishers"]:
        yield CheckResult(
            name,
            "warn",
            "no checkpoint publisher is configured: checkpoints stay on this machine, so a "
            "restore of the whole machine from an old backup goes unnoticed (set "
            "MEMWARDEN_CHECKPOINT_PUBLISH_DIR, _URL, _WEBHOOK or _COMMAND)",
        )
        return
    failed = {
        publisher: item
        for publisher, item in status["last_publication"].items()
        if publisher in status["publishers"] and item["state"] != "delivered"
    }
    if failed:
        detail = "; ".join(f"{p}: {item['error']}" for p, item in failed.items())
        yield CheckResult(name, "fail", f"the last publication failed ({detail})", status)
        return
    if latest is None:
        yield CheckResult(name, "warn", "no checkpoint yet: run `memwarden audit checkpoint`")
        return
    yield CheckResult(
        name,
        "ok",
        f"last checkpoint: {latest['tree_size']} rows at {latest['created_at']}, published to "
        f"{', '.join(status['publishers'])}",
    )


CHECKS: list[Check] = [check_signing_key, check_tree, check_publishing]
