"""The bench harness: results, the registry of benchmarks, the run context and small helpers."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress

from memwarden import Memwarden, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

Engine = Literal["sqlite", "postgresql"]


@dataclass
class Result:
    """One measured figure, compared with a baseline measured in the same run.

    ``ratio`` always reads "higher is better": value / baseline for rates, baseline / value
    for latencies. ``floor`` is the threshold that decides pass or fail; it applies to the
    ratio or, for absolute targets such as a p95 in milliseconds, to the value itself."""

    name: str
    value: float | None
    unit: str
    engine: str
    rows: int
    baseline: float | None = None
    baseline_label: str = ""
    floor: float | None = None
    floor_on: Literal["ratio", "value"] = "ratio"
    better: Literal["higher", "lower"] = "higher"
    aim: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.value <= 0 or self.baseline <= 0:
            return None
        return self.value / self.baseline if self.better == "higher" else self.baseline / self.value

    @property
    def passed(self) -> bool | None:
        """True or False against the floor; None when there is no floor or nothing ran."""
        if self.error is not None:
            return False
        if self.floor is None or self.skipped is not None:
            return None
        measured = self.ratio if self.floor_on == "ratio" else self.value
        if measured is None:
            return False
        if self.floor_on == "value" and self.better == "lower":
            return measured <= self.floor
        return measured >= self.floor

    def floor_text(self) -> str:
        if self.floor is None:
            return "report"
        if self.floor_on == "ratio":
            return f"≥ {self.floor:g}×"
        sign = "≤" if self.better == "lower" else "≥"
        return f"{sign} {fmt(self.floor)} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "baseline": _round(self.baseline),
            "baseline_label": self.baseline_label,
            "ratio": round(ratio, 4) if ratio is not None else None,
            "floor": self.floor,
            "floor_on": self.floor_on,
            "better": self.better,
            "aim": self.aim,
            "passed": self.passed,
            "engine": self.engine,
            "rows": self.rows,
            "skipped": self.skipped,
            "error": self.error,
            **{key: _round(value) for key, value in self.detail.items()},
        }


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if abs(value) < 1000 else round(value, 1)
    return value


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


# -- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    order: int
    func: Callable[[Context], list[Result]]
    scale: bool = False  # runs with ``--scale`` only (and only those run then)


REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str, description: str, order: int = 100, scale: bool = False
) -> Callable[[Callable[[Context], list[Result]]], Callable[[Context], list[Result]]]:
    """Register a benchmark: a function of the run context returning its results.
    ``scale``: a benchmark of the ``--scale`` size, which a plain run leaves out."""

    def register(func: Callable[[Context], list[Result]]) -> Callable[[Context], list[Result]]:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Benchmark(name, description, order, func, scale)
        return func

    return register


# -- the machine's load -------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """The load averages (1, 5 and 15 minutes) and the CPUs that share them: a figure measured
    at a load of 6 on 2 cores is not a regression of one measured idle."""

    averages: tuple[float, float, float]
    cpus: int

    @classmethod
    def now(cls) -> Load:
        one, five, fifteen = os.getloadavg()
        return cls((round(one, 2), round(five, 2), round(fifteen, 2)), os.cpu_count() or 1)


@dataclass(frozen=True)
class Speed:
    """How fast this machine runs the interpreter and the ledger's hash, as a benchmark starts:
    the best of a few short runs of each, so a busy moment does not count. The load says how
    busy a machine was; this says how fast it is when it is not. Machines of one kind differ by
    2-3x here (the ledger bench's one-process HMAC rate: 662k-1.07M rows/s on earlier ones,
    335k on a later one), so a figure is compared with one from another machine only with
    these beside it."""

    loop_ns: float  # one step of a plain Python loop adding integers
    # HMAC-SHA256 over 350 bytes (about a ledger row's header), one ``hmac.new`` call with its
    # key set up each time: a gauge of the machine, not the walk's cost a row (the walk reuses
    # the key's prepared states)
    hmac_us: float

    @classmethod
    def now(cls, tries: int = 3) -> Speed:
        return cls(min(_loop_ns() for _ in range(tries)), min(_hmac_us() for _ in range(tries)))


def _loop_ns(steps: int = 200_000) -> float:
    started = time.perf_counter()
    total = 0
    for step in range(steps):
        total += step
    return (time.perf_counter() - started) / steps * 1e9


def _hmac_us(calls: int = 5_000) -> float:
    key, message = b"k" * 32, b"m" * 350
    started = time.perf_counter()
    for _ in range(calls):
        hmac.new(key, message, hashlib.sha256).digest()
    return (time.perf_counter() - started) / calls * 1e6


def speed_detail(speed: Speed) -> dict[str, Any]:
    """What a result keeps of the machine's speed (``Speed``)."""
    return {"speed_loop_ns": round(speed.loop_ns, 1), "speed_hmac_us": round(speed.hmac_us, 2)}


def load_detail(start: Load, end: Load) -> dict[str, Any]:
    """What a result keeps of the machine's load while its benchmark ran."""
    return {
        "load_start": list(start.averages),
        "load_end": list(end.averages),
        "cpus": end.cpus,
        "loadavg_1m": end.averages[0],  # kept: results written before the start/end pair
    }


def load_text(detail: dict[str, Any]) -> str:
    """``start→end/cpus`` of the 1-minute load average, for the table."""
    start, end, cpus = detail.get("load_start"), detail.get("load_end"), detail.get("cpus")
    if not start or not end or not cpus:
        return "—"
    return f"{start[0]:.1f}→{end[0]:.1f}/{cpus}"


def speed_text(detail: dict[str, Any]) -> str:
    """The loop step's nanoseconds (``Speed``), for the table."""
    loop = detail.get("speed_loop_ns")
    return "—" if loop is None else f"{loop:.0f} ns"


# -- the run context --------------------------------------------------------------------------


@dataclass
class Context:
    quick: bool
    workdir: Path
    console: Console
    progress_bar: Progress | None = None
    pg_url: str | None = None
    pg_reason: str | None = None
    seed: int = 20_261_123
    # ``--scale``: the fraction of the scale size to load (1.0: 1M memories, 10M ledger rows).
    scale: float | None = None

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def size_label(self) -> str:
        if self.scale is not None:
            return "scale" if self.scale == 1 else f"scale×{self.scale:g}"
        return "quick" if self.quick else "full"

    def note(self, message: str) -> None:
        """A line for a person watching a terminal; silent otherwise."""
        if self.progress_bar is not None:
            self.progress_bar.console.log(message)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n)``; shows a bar on a terminal and nothing elsewhere."""
        bar = self.progress_bar
        if bar is None:
            yield lambda _n: None
            return
        task = bar.add_task(description, total=total)
        try:
            yield lambda n: bar.advance(task, n)
        finally:
            bar.remove_task(task)

    @contextmanager
    def memwarden(self, engine: Engine, label: str, **overrides: Any) -> Iterator[Memwarden]:
        """A fresh, initialised memwarden (project ``atlas``) on a new database of ``engine``."""
        home = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.workdir))
        with self.database_url(engine, home) as url:
            mw = Memwarden.init(bench_settings(home, url, **overrides))
            try:
                mw.add_project("atlas")
                yield mw
            finally:
                mw.close()
        shutil.rmtree(home, ignore_errors=True)

    @contextmanager
    def database_url(self, engine: Engine, home: Path) -> Iterator[str]:
        if engine == "sqlite":
            yield f"sqlite:///{home / 'memwarden.db'}"
            return
        if self.pg_url is None:
            raise RuntimeError(f"PostgreSQL is unavailable: {self.pg_reason}")
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.pg_url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            separator = "&" if "?" in self.pg_url else "?"
            yield f"{self.pg_url}{separator}options=-csearch_path%3D{schema}"
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

    def skipped_pg(self, name: str, unit: str) -> Result:
        return Result(name, None, unit, "postgresql", 0, skipped=self.pg_reason or "unavailable")


def bench_settings(home: Path, database_url: str, **given: Any) -> Settings:
    """Memwarden's defaults, not the caller's environment: no MEMWARDEN_* variable (a webhook,
    a key or witness file kept elsewhere) may leak into a benchmark or be touched by one. Only
    MEMWARDEN_SQLITE_SYNCHRONOUS passes through, to measure that durability choice. The
    embedder is off unless a benchmark asks for it (``embedder="local"``): the others measure
    what they measured before vectors existed."""
    overrides: dict[str, Any] = {"embedder": "none", **given}
    if synchronous := os.environ.get("MEMWARDEN_SQLITE_SYNCHRONOUS"):
        overrides["sqlite_synchronous"] = synchronous
    return Settings(
        _env_prefix="MEMWARDEN_BENCH_IGNORED_",
        home=home,
        database_url=database_url,
        **overrides,
    )


def probe_postgres(url: str) -> str | None:
    """Why PostgreSQL cannot be used for the bench, or None when it can."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL for the bench"
        return f"PostgreSQL at {url} is unreachable: {str(exc).splitlines()[0]}"
    return None


def pg_url_from_env() -> str:
    return os.environ.get("MEMWARDEN_BENCH_PG_URL", DEFAULT_PG_URL)


# -- measuring ----------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of durations in seconds, in milliseconds."""
    return {
        "p50_ms": percentile(samples, 50) * 1000,
        "p95_ms": percentile(samples, 95) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
        "mean_ms": sum(samples) / len(samples) * 1000,
    }


def timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def raw_sqlite_connect(path: Any, **options: Any) -> Any:
    """A raw DB-API connection (a baseline, or data written fast) on memwarden's own SQLite
    library (db/driver.py), never Python's sqlite3: two SQLite libraries in one process on one
    file break each other's locks, and an older one cannot write the newer one's FTS5 index."""
    from memwarden.db.driver import sqlite_driver

    return sqlite_driver().module.connect(str(path), **options)
