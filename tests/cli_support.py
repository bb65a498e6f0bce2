"""Helpers the CLI tests share: a runner bound to one data folder, and the real console script."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from memwarden.cli import app


@functools.cache
def _command() -> TyperGroup:
    # Typer rebuilds the whole command tree on every CliRunner.invoke (~70 ms); build it once.
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)
    return command


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def _scrubbed() -> dict[str, str | None]:
    """Unset every MEMWARDEN_ variable of the outer environment (the Makefile exports some);
    recall by full text unless a test asks for the embedder (it costs a model load); no
    alert-state mirror unless a test asks for it (conftest.py says why)."""
    scrubbed: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("MEMWARDEN_")
    }
    scrubbed["MEMWARDEN_EMBEDDER"] = "none"
    scrubbed["MEMWARDEN_ALERT_STATE_PROJECT"] = ""
    return scrubbed


class Cli:
    """Runs ``memwarden`` in-process on one home (and optionally one database URL)."""

    def __init__(self, home: Path, database_url: str | None = None, **env: str) -> None:
        self.home = home
        # A fixed width keeps rich tables from wrapping user text differently per terminal.
        self.env: dict[str, str | None] = {
            **_scrubbed(),
            "MEMWARDEN_HOME": str(home),
            "COLUMNS": "200",
            **env,
        }
        if database_url is not None:
            self.env["MEMWARDEN_DATABASE_URL"] = database_url
        self.runner = CliRunner()

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Outcome:
        """Like CliRunner.invoke, except that an exception escaping the CLI fails the test."""
        with self.runner.isolation(env={**self.env, **(env or {})}) as (out, err, _mixed):
            try:
                _command().main(args=list(args), prog_name="memwarden")
                exit_code = 0
            except SystemExit as stop:
                exit_code = stop.code if isinstance(stop.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            result = Outcome(exit_code, out.getvalue().decode(), err.getvalue().decode())
        assert result.exit_code == code, (
            f"memwarden {' '.join(args)}: exit {result.exit_code}, wanted {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def error(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail cleanly; return its one-line error."""
        result = self.run(*args, code=code)
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
        if code == 1:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            assert result.stdout == ""
            return lines[0]
        return result.stderr


def console_script() -> str:
    """The installed ``memwarden`` entry point of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("memwarden")
    found = str(beside) if beside.exists() else shutil.which("memwarden")
    assert found, "the memwarden console script is not installed (pip install -e .)"
    return found


def run_script(
    *args: str, home: Path, database_url: str | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    environ.update(MEMWARDEN_HOME=str(home), MEMWARDEN_EMBEDDER="none")
    environ.update(env)
    if database_url is not None:
        environ["MEMWARDEN_DATABASE_URL"] = database_url
    return subprocess.run(
        [console_script(), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
