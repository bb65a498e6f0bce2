"""A point on the chain: a row's sequence number and its tag.

A module of its own because a verify worker unpickles heads with its job (``marks``): a class
is found again by the module that defined it, and the witness's module loads the logging
(structlog, and with it most of a worker's start) that a worker never uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    seq: int
    tag: str
