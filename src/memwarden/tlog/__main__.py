"""``python -m memwarden.tlog verify FILE --key KEY``: check a checkpoint, a proof or an
evidence bundle offline, with only the log's public (verifier) key.

Exit status: 0 when it holds, 1 when it does not (one line saying why), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .evidence import EvidenceError, verify_document
from .merkle import ProofError
from .note import NoteError, Verifier, open_checkpoint


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")


def _verifier(key: str) -> Verifier:
    candidate = Path(key)
    if "+" not in key or candidate.is_file():
        key = candidate.read_text("utf-8").strip()
    return Verifier.parse(key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memwarden.tlog", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check a checkpoint, proof or evidence bundle")
    check.add_argument(
        "file", help="the document (a JSON proof or bundle, or a checkpoint); - is stdin"
    )
    check.add_argument("--key", required=True, help="the verifier key, or a file holding it")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        verifier = _verifier(args.key)
        text = _read(args.file)
        if text.lstrip().startswith("{"):
            summary = verify_document(json.loads(text), verifier)
        else:
            checkpoint = open_checkpoint(text, verifier)
            summary = {
                "kind": "checkpoint",
                "origin": checkpoint.origin,
                "tree_size": checkpoint.size,
                "root": checkpoint.root.hex(),
                "time": checkpoint.time,
            }
    except (EvidenceError, NoteError, ProofError, ValueError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"ok": True, **summary}, indent=2))
    else:
        details = ", ".join(f"{k}={v}" for k, v in summary.items() if k != "kind")
        print(f"OK: {summary['kind']} verified ({details})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
