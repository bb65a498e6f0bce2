"""Run memwarden's benchmarks: ``python -m bench.run [--quick | --scale] [--only NAME] [--json]``.

Every bench module of the package is discovered and its benchmarks run in order; each result
is written to ``bench/results/<name>.json`` and the run ends with one table of all of them
(or, with ``--json``, one JSON document on stdout). A progress bar shows on a terminal only.
Every result keeps its engine, its size and the machine's load average at the start and the
end of its benchmark, with the CPU count (the table's ``load`` column: 1-minute average
start→end/CPUs), so a slower figure on a busy machine is not mistaken for a regression, and
the machine's speed as it started (``Speed``: a plain loop's step and one HMAC; the table's
``speed`` column), so a slower machine is not either.
``--scale`` runs the scale benchmarks alone (1M memories, 10M ledger rows on PostgreSQL, up
to an hour); ``--scale-fraction F`` or ``MEMWARDEN_BENCH_SCALE=F`` loads F of that size.
Exit status: 0, or 1 with ``--strict`` when a result misses its floor or a benchmark fails.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import bench
from bench._harness import (
    REGISTRY,
    RESULTS_DIR,
    Benchmark,
    Context,
    Load,
    Result,
    Speed,
    fmt,
    load_detail,
    load_text,
    pg_url_from_env,
    probe_postgres,
    speed_detail,
    speed_text,
)


def discover() -> list[Benchmark]:
    """Import every bench module (public modules of the package other than this one)."""
    for module in pkgutil.iter_modules(bench.__path__):
        if not module.name.startswith("_") and module.name != "run":
            importlib.import_module(f"bench.{module.name}")
    return sorted(REGISTRY.values(), key=lambda b: (b.order, b.name))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (~10k rows), 1-2 minutes")
    size.add_argument(
        "--scale",
        action="store_true",
        help="the scale benchmarks alone: 1M memories, 10M ledger rows (up to an hour)",
    )
    parser.add_argument(
        "--scale-fraction",
        type=_fraction,
        default=None,
        metavar="F",
        help="with --scale: load this fraction of the scale size (0 < F <= 1; default 1, or "
        "MEMWARDEN_BENCH_SCALE)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this benchmark (repeatable, or comma-separated); see --list",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON, no table")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a result misses its floor"
    )
    return parser.parse_args(argv)


def _fraction(value: str) -> float:
    try:
        fraction = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < fraction <= 1:
        raise argparse.ArgumentTypeError(f"a fraction in (0, 1] is needed, not {value}")
    return fraction


def scale_fraction(args: argparse.Namespace) -> float | None:
    """The fraction of the scale size this run loads, or None when it is not a scale run."""
    if not args.scale:
        if args.scale_fraction is not None:
            print("--scale-fraction goes with --scale", file=sys.stderr)
            raise SystemExit(2)
        return None
    if args.scale_fraction is not None:
        return float(args.scale_fraction)
    given = os.environ.get("MEMWARDEN_BENCH_SCALE")
    if not given:
        return 1.0
    try:
        return _fraction(given)
    except argparse.ArgumentTypeError as exc:
        print(f"MEMWARDEN_BENCH_SCALE: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def select(benchmarks: list[Benchmark], only: list[str], scale: bool = False) -> list[Benchmark]:
    wanted = [name.strip() for item in only for name in item.split(",") if name.strip()]
    if not wanted:
        # A plain run leaves the scale benchmarks out; a scale run runs them alone.
        return [b for b in benchmarks if b.scale == scale]
    known = {b.name for b in benchmarks}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        print(
            f"unknown benchmark {', '.join(unknown)}: one of {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        raise SystemExit(2)  # a usage error, as argparse reports its own
    return [b for b in benchmarks if b.name in wanted]


def write(result: Result) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{result.name}.json"
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def table(results: list[Result], size: str, seconds: float) -> Table:
    title = f"memwarden benchmarks ({size} run, {seconds:.0f} s)"
    grid = Table(
        title=title,
        title_justify="left",
        caption="load: the 1-minute load average at the benchmark's start→end / CPUs; "
        "speed: one step of a plain Python loop as the benchmark started (higher: a slower machine)",
        caption_justify="left",
    )
    for column in ("name", "engine", "rows"):
        grid.add_column(column)
    for column in ("value", "unit", "baseline", "ratio"):
        grid.add_column(column, justify="right" if column != "unit" else "left")
    grid.add_column("floor", justify="right")
    grid.add_column("load", justify="right")
    grid.add_column("speed", justify="right")
    grid.add_column("result")
    for result in results:
        ratio = result.ratio
        if result.error is not None:
            verdict = f"[red]ERROR[/] {result.error[:60]}"
        elif result.skipped is not None:
            verdict = f"[yellow]skipped[/] {result.skipped}"
        elif result.passed is None:
            verdict = "reported"
        else:
            verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        grid.add_row(
            result.name,
            result.engine,
            f"{result.rows:,}",
            fmt(result.value),
            result.unit,
            fmt(result.baseline),
            f"{ratio:.2f}×" if ratio is not None else "—",
            result.floor_text(),
            load_text(result.detail),
            speed_text(result.detail),
            verdict,
        )
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Library logs would interleave with the table: only errors reach stderr during a run.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    fraction = scale_fraction(args)
    benchmarks = select(discover(), args.only, scale=fraction is not None)
    # Off a terminal rich would wrap the table at 80 columns: give it room instead.
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 160)
    if args.list:
        for b in benchmarks:
            console.print(f"[bold]{b.name}[/]  {b.description}")
        return 0
    interactive = sys.stdout.isatty() and not args.json
    pg_url = pg_url_from_env()
    pg_reason = probe_postgres(pg_url)
    workdir = Path(
        tempfile.mkdtemp(prefix="memwarden-bench-", dir=os.environ.get("MEMWARDEN_BENCH_DIR"))
    )
    progress = (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        if interactive
        else None
    )
    ctx = Context(
        quick=args.quick,
        workdir=workdir,
        console=console,
        progress_bar=progress,
        pg_url=None if pg_reason else pg_url,
        pg_reason=pg_reason,
        scale=fraction,
    )
    results: list[Result] = []
    started = time.perf_counter()
    try:
        if progress is not None:
            progress.start()
        for b in benchmarks:
            load_start = Load.now()
            speed = speed_detail(Speed.now())
            try:
                produced = b.func(ctx)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the rest
                detail = traceback.format_exc(limit=-3)
                print(detail, file=sys.stderr)
                produced = [Result(b.name, None, "", "-", 0, error=f"{type(exc).__name__}: {exc}")]
            # Timings on a busy machine mislead: say how busy it was, from start to end.
            load = {**load_detail(load_start, Load.now()), **speed}
            for result in produced:
                for key, value in load.items():
                    result.detail.setdefault(key, value)
                result.detail.setdefault("size", ctx.size_label)
                write(result)
                ctx.note(f"{result.name}: {fmt(result.value)} {result.unit}")
            results.extend(produced)
    finally:
        if progress is not None:
            progress.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        console.print(table(results, ctx.size_label, seconds))
        console.print(f"results written to {RESULTS_DIR}")
    failed = any(r.passed is False for r in results)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
