"""The interactive triage loop: one candidate at a time, one key per decision.

Keys: ``p`` promote, ``r`` reject (with an optional reason), ``e`` edit the statement then
promote, ``s`` skip, ``q`` quit, ``?`` help. The loop reads its keys and text through the
functions it is given, so a test (or another front end) drives it without a terminal; the end
of the input quits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import click
from rich.console import Console
from rich.text import Text

from memwarden.cli import triage_view
from memwarden.core.lifecycle import CANDIDATE
from memwarden.core.models import Memory
from memwarden.core.service import Memwarden
from memwarden.errors import MemwardenError

KeyReader = Callable[[], str]  # one key; "" at the end of the input
TextReader = Callable[[str, str], "str | None"]  # (prompt, default) -> text; None at the end
HELP = "[p]romote  [r]eject  [e]dit then promote  [s]kip  [q]uit  [?] help"
PAGE = 20


@dataclass
class SessionSummary:
    promoted: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    edited: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    errors: int = 0
    quit: bool = False

    def line(self) -> str:
        return (
            f"triage: {len(self.promoted)} promoted ({len(self.edited)} edited), "
            f"{len(self.rejected)} rejected, {len(self.skipped)} skipped"
            + (f", {self.errors} error(s)" if self.errors else "")
        )


def terminal_key() -> str:
    """A key press on a terminal; otherwise the first character of the next input line."""
    if sys.stdin.isatty():
        return click.getchar()
    line = sys.stdin.readline()
    return line.strip()[:1] or ("?" if line else "")


def terminal_text(prompt: str, default: str) -> str | None:
    try:
        value = click.prompt(prompt, default=default, show_default=False)
    except click.Abort:
        return None
    return str(value)


def _key(console: Console, read_key: KeyReader) -> str:
    while True:
        console.print(Text(HELP))
        key = read_key().strip().lower()[:1]
        if key in ("p", "r", "e", "s", "q"):
            return key
        if key == "":
            return "q"


def run_session(
    mw: Memwarden,
    console: Console,
    read_key: KeyReader,
    read_text: TextReader,
    *,
    project: str | None = None,
    type: str | None = None,
    note: str | None = None,
) -> SessionSummary:
    """Walk the queue newest first until it ends or the user quits."""
    summary = SessionSummary()
    total = mw.triage_size(project, type)
    cursor: int | None = None
    shown = 0
    while not summary.quit:
        items = mw.triage_queue(project=project, type=type, after_id=cursor, limit=PAGE)
        if not items:
            break
        for item in items:
            cursor = item.memory.id
            try:
                detail = mw.triage_detail(item.memory.id)
            except MemwardenError:
                continue
            if detail.item.memory.status != CANDIDATE:
                continue  # decided elsewhere since the page was read
            shown += 1
            triage_view.candidate(console, detail, f"({shown}/{total})")
            if not _decide(mw, console, read_key, read_text, detail.item.memory, note, summary):
                summary.quit = True
                break
    console.print(summary.line())
    return summary


def _decide(
    mw: Memwarden,
    console: Console,
    read_key: KeyReader,
    read_text: TextReader,
    memory: Memory,
    note: str | None,
    summary: SessionSummary,
) -> bool:
    """Act on one candidate; False to quit."""
    key = _key(console, read_key)
    if key == "q":
        return False
    if key == "s":
        summary.skipped.append(memory.id)
        return True
    try:
        if key == "p":
            mw.triage_promote([memory.id], note)
            summary.promoted.append(memory.id)
            console.print(f"promoted {memory.id}")
        elif key == "r":
            reason = read_text("reason (optional)", "")
            if reason is None:
                return False
            mw.triage_reject([memory.id], reason.strip() or note)
            summary.rejected.append(memory.id)
            console.print(f"rejected {memory.id}")
        else:
            text = read_text("statement", memory.content)
            if text is None:
                return False
            mw.triage_edit_promote(memory.id, text, note)
            summary.promoted.append(memory.id)
            summary.edited.append(memory.id)
            console.print(f"edited and promoted {memory.id}")
    except MemwardenError as exc:
        summary.errors += 1
        console.print(Text(f"error: {exc}"))
    return True
