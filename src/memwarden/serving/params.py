"""Values both HTTP faces check the same way: ids, ISO 8601 times, storable text."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path

ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
)

# The largest id either engine stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1

MemoryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The memory's id")]


def text_problem(value: str) -> str | None:
    """Why neither engine could store this text, or None: NULs and lone surrogates."""
    if "\x00" in value:
        return "text may not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text is not valid Unicode (a lone surrogate)"
    return None
