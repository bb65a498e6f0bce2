"""A notice: what one delivery says (an alert firing, its resolution, or a test)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

NoticeKind = Literal["alert", "resolved", "test"]

COLOURS = {"info": 0x3498DB, "warning": 0xF39C12, "critical": 0xE74C3C, "resolved": 0x2ECC71}


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    alert_id: int
    delivery_id: int
    severity: str
    title: str
    message: str
    context: dict[str, Any]
    fingerprint: str
    at: datetime
    count: int  # occurrences of the problem in the alert's window so far
    folded: int  # repeats that were not delivered on their own and this notice reports
    uid: str = ""  # the delivery's stable id: every attempt carries it, so repeats can be dropped

    @property
    def status(self) -> str:
        return "resolved" if self.kind == "resolved" else "firing"

    @property
    def colour(self) -> int:
        return COLOURS["resolved"] if self.kind == "resolved" else COLOURS.get(self.severity, 0)

    @property
    def headline(self) -> str:
        if self.kind == "resolved":
            return f"Resolved: {self.title}"
        if self.kind == "test":
            return f"Test: {self.title}"
        return self.title

    def folded_line(self) -> str | None:
        if self.folded <= 0:
            return None
        noun = "repeat" if self.folded == 1 else "repeats"
        if self.kind == "resolved":
            return f"{self.folded} {noun} since the last notice were folded in."
        return f"{self.folded} {noun} of this alert since the last notice were folded in."
