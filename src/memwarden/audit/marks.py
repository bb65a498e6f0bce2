"""What the witness and an operator's anchor saw of the chain: the heads a verify must find.

A module of its own, apart from ``diagnose``, because a verify worker receives the marks with
its job and must not load the diagnosis (and with it the schema) to read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from memwarden.audit.head import Head


@dataclass(frozen=True)
class Marks:
    """What the witness (its trail, oldest first) and an operator's anchor saw."""

    witness: tuple[Head, ...] = ()
    anchor: tuple[Head, ...] = ()

    @classmethod
    def of(cls, name: str, mark: Head) -> Marks:
        return cls(witness=(mark,)) if name == "witness" else cls(anchor=(mark,))

    def named(self) -> list[tuple[str, Head]]:
        found = []
        if self.witness:
            found.append(("witness", self.witness[-1]))
        if self.anchor:
            found.append(("anchor", self.anchor[-1]))
        return found

    def highest(self) -> int:
        return max((head.seq for _, head in self.named()), default=0)
