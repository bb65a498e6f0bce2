"""Which SQLite memwarden runs on: a known, current one, never whatever Python happens to link.

Python's ``sqlite3`` links the system's SQLite, and that can be old: Debian 12 ships 3.40.1,
on which the FTS5 index of an erasing store was corrupted after about a thousand ``optimize``
merges ("database disk image is malformed" on every later write and recall). So memwarden
brings its own SQLite in the ``sqlean-py`` wheel (a current SQLite with FTS5, JSON and
``enable_load_extension``; wheels for Linux x86_64 and aarch64, macOS x86_64 and arm64) and
uses it whenever it imports. Python's own module is taken only when its SQLite is at or above
``SQLITE_FLOOR``, the oldest version the erase soak and the test suite have passed on; below
it, opening a SQLite database fails with what to install. See docs/storage.md.

``MEMWARDEN_SQLITE_DRIVER`` picks one explicitly: ``auto`` (the default: sqlean, else the
standard library at or above the floor), ``sqlean`` or ``stdlib``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Literal

from memwarden.errors import StorageError

# The oldest SQLite the erase soak (5,000 secure-delete erasures) passed on: FTS5 secure-delete
# exists from 3.42.0; 3.45.1 is the oldest build measured here (docs/storage.md).
SQLITE_FLOOR: tuple[int, int, int] = (3, 45, 1)
INSTALL_HINT = "pip install 'sqlean-py>=3.45.1'"

DriverName = Literal["auto", "sqlean", "stdlib"]


@dataclass(frozen=True)
class SqliteDriver:
    """A DB-API module for SQLite and the library it links."""

    name: str  # "sqlean" or "stdlib"
    module: ModuleType
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)

    def describe(self) -> str:
        source = "sqlean-py" if self.name == "sqlean" else "Python's sqlite3"
        return f"SQLite {self.version_text} ({source})"


def _load(name: str) -> ModuleType:
    return importlib.import_module("sqlean.dbapi2" if name == "sqlean" else "sqlite3")


Loader = Callable[[str], ModuleType]


def choose(
    wanted: DriverName = "auto",
    *,
    loader: Loader = _load,
    floor: tuple[int, int, int] = SQLITE_FLOOR,
) -> SqliteDriver:
    """The driver to use, or a StorageError that says what to install."""
    order: Sequence[str] = ("sqlean", "stdlib") if wanted == "auto" else (wanted,)
    reasons: list[str] = []
    for name in order:
        try:
            module = loader(name)
        except ImportError:
            reasons.append("sqlean-py is not installed" if name == "sqlean" else "no sqlite3")
            continue
        version = tuple(int(part) for part in module.sqlite_version_info[:3])
        driver = SqliteDriver(name, module, (version[0], version[1], version[2]))
        if driver.version >= floor:
            return driver
        reasons.append(f"{driver.describe()} is older than {'.'.join(map(str, floor))}")
    raise StorageError(
        "no usable SQLite: "
        + "; ".join(reasons)
        + f". memwarden needs SQLite {'.'.join(map(str, floor))} or newer: {INSTALL_HINT}"
    )


@cache
def sqlite_driver(wanted: DriverName = "auto") -> SqliteDriver:
    """The process's driver (chosen once per setting)."""
    return choose(wanted)
