"""``memwarden doctor``: checks an installation's setup, one result per check.

Each area keeps its checks in a module of its own here (``database``, ``ledger``, …), each a
list ``CHECKS`` of functions ``check(ctx) -> Iterable[CheckResult]``. The doctor opens the
store itself and keeps going when opening fails (a wrong key, a missing witness): the checks
that need an open store then report why they could not run, the others still run.

A result is ``ok``, ``warn`` (worth a look; the exit code stays 0) or ``fail`` (a problem an
operator must fix; the exit code is 1).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from memwarden.config import Settings

if TYPE_CHECKING:
    from memwarden.core.service import Memwarden

log = structlog.get_logger(__name__)

Status = Literal["ok", "warn", "fail"]

# The modules whose CHECKS run, in this order. Each area adds its own module here.
CHECK_MODULES: tuple[str, ...] = (
    "database",
    "faults",
    "ledger",
    "storage",
    "alerts",
    "recall",
    "checkpoints",
    "keys",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, **self.data}


@dataclass
class DoctorContext:
    """What the checks see: the settings, and the opened store (or why it would not open)."""

    settings: Settings
    memwarden: Memwarden | None
    open_error: BaseException | None

    def need_store(self, name: str) -> CheckResult | None:
        """A ``fail`` result naming why ``name`` could not run, or None when the store is open."""
        if self.memwarden is not None:
            return None
        why = str(self.open_error).splitlines()[0] if self.open_error else "not opened"
        return CheckResult(name, "fail", f"not checked: the store did not open ({why})")


Check = Callable[[DoctorContext], Iterable[CheckResult]]


@dataclass(frozen=True)
class DoctorReport:
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.status != "fail" for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [result.to_dict() for result in self.results]}


def all_checks() -> list[Check]:
    checks: list[Check] = []
    for name in CHECK_MODULES:
        module = importlib.import_module(f"memwarden.core.doctor.{name}")
        checks.extend(module.CHECKS)
    return checks


@contextmanager
def _opened(settings: Settings) -> Iterator[tuple[Memwarden | None, BaseException | None]]:
    from memwarden.core.service import Memwarden  # the facade imports this package's users

    try:
        mw = Memwarden(settings, quick_check=False)
    except Exception as exc:  # noqa: BLE001 - the doctor reports a store that will not open
        yield None, exc
        return
    try:
        yield mw, None
    finally:
        mw.close()


def run(settings: Settings) -> DoctorReport:
    """Run every check. Never raises: a check that crashes is reported as a failure."""
    results: list[CheckResult] = []
    with _opened(settings) as (mw, error):
        ctx = DoctorContext(settings, mw, error)
        for check in all_checks():
            name = getattr(check, "__name__", "check").removeprefix("check_")
            try:
                results.extend(check(ctx))
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the rest
                log.error("doctor_check_crashed", check=name, error=str(exc))
                results.append(
                    CheckResult(
                        name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}"
                    )
                )
    return DoctorReport(tuple(results))
