"""How the triage queue, one candidate and the automatic moves look on a terminal.

User text (statements, prompts, responses) is never read as markup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from memwarden.core.automation import Moved
from memwarden.core.triage import TriageDetail, TriageItem

PROMPT_CHARS = 600


def _flat(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def age(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def queue(console: Console, items: Sequence[TriageItem], total: int, *, more: bool) -> None:
    if not items:
        console.print("the triage queue is empty")
        return
    table = Table(show_lines=False)
    for name in ("id", "type", "conf", "reinf", "age", "from", "project", "content"):
        table.add_column(name, overflow="fold")
    for item in items:
        m, source = item.memory, item.source
        table.add_row(
            str(m.id),
            m.type,
            f"{m.confidence:.2f}",
            str(m.reinforcement_count),
            age(m.created_at),
            f"#{source.interaction_id}" if source else "-",
            m.project,
            Text(_flat(m.content, 80)),
        )
    console.print(table)
    hint = f"; next page: --after {items[-1].memory.id}" if more else ""
    console.print(f"{len(items)} of {total} candidate(s){hint}")


def moved(console: Console, items: Sequence[Moved]) -> None:
    table = Table()
    for name in ("id", "type", "reinf", "conf", "project", "content"):
        table.add_column(name, overflow="fold")
    for m in items:
        table.add_row(
            str(m.id),
            m.type,
            str(m.reinforcement_count),
            f"{m.confidence:.2f}",
            m.project,
            Text(_flat(m.content, 80)),
        )
    console.print(table)


def candidate(console: Console, detail: TriageDetail, position: str = "") -> None:
    m = detail.item.memory
    head = Text(
        f"candidate {m.id} · {m.type} · confidence {m.confidence:.2f} · reinforced "
        f"{m.reinforcement_count}× · {m.project} · {age(m.created_at)} old {position}".rstrip()
    )
    parts: list[Text | Panel] = [head, Panel(Text(m.content), title="statement")]
    if detail.interaction is not None:
        i = detail.interaction
        source = Text()
        source.append("user: ", style="bold")
        source.append(_flat(i.prompt, PROMPT_CHARS) + "\n")
        source.append("agent: ", style="bold")
        source.append(_flat(i.response, PROMPT_CHARS))
        extractor = detail.item.source
        via = f" via {extractor.extractor} {extractor.extractor_version}" if extractor else ""
        client = f" from {i.client}" if i.client else ""
        parts.append(
            Panel(source, title=f"source: interaction {i.id}{client}, {age(i.created_at)} ago{via}")
        )
    else:
        parts.append(Text("no source interaction (created directly)"))
    if detail.similar:
        similar = Text()
        for s in detail.similar:
            similar.append(f"#{s.memory.id} ({s.memory.type}, {s.score:.0%} alike): ")
            similar.append(_flat(s.memory.content, 100) + "\n")
        parts.append(Panel(similar, title="similar active memories"))
    console.print(Panel(Group(*parts), title="triage", expand=True))
