"""The installed `memwarden` console script, run as a real process (as `make run` does)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from cli_support import console_script, run_script
from memwarden import Memwarden, Settings


def test_demo_runs_twice(settings: Settings) -> None:
    """`make run`: init then demo, twice over, on both engines."""
    url, home = settings.database_url, settings.home
    assert run_script("init", home=home, database_url=url).returncode == 0
    first = run_script("demo", home=home, database_url=url)
    assert first.returncode == 0, first.stderr
    assert "project atlas-rocket: created" in first.stdout
    assert "ingested into atlas-rocket: 4 new" in first.stdout
    assert "## Project state" in first.stdout and "ledger ok" in first.stdout
    assert "Traceback" not in first.stderr

    second = run_script("demo", "--json", home=home, database_url=url)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["project_created"] is False and result["state_changed"] == 0
    assert result["ingest"]["unchanged"] == 4 and result["ingest"]["created"] == 0
    assert all(kept["reinforced"] for kept in result["memories"])
    assert result["recall"]["hits"] and result["context"]["items"][0]["kind"] == "state"
    assert result["ledger"]["ok"] is True


def test_exit_codes_as_a_process(tmp_path: Path) -> None:
    home = tmp_path / "home"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_script(*args, home=home)

    # `init` as a process is test_demo_runs_twice's (both engines); here it is only set-up, and
    # each start of the console script costs over a second of imports.
    Memwarden.init(Settings(home=home)).close()
    added = run("memory", "add", "-p", "atlas", "-t", "project", "x")
    assert added.returncode == 1 and added.stdout == "" and "Traceback" not in added.stderr
    assert added.stderr == (
        "error: unknown project 'atlas': create it first with `memwarden project add atlas`\n"
    )
    usage = run("memory", "add", "-p", "atlas", "-t", "project", "-c", "high", "x")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "--confidence" in usage.stderr
    verified = run("audit", "verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True


def test_not_a_database_as_a_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "memwarden.db").write_bytes(b"PK\x03\x04 a zip file, say")
    result = run_script("memory", "list", home=home)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == f"error: {home / 'memwarden.db'} is not a SQLite database"
    debug = run_script("memory", "list", home=home, MEMWARDEN_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a TTY, ingest and verify draw a progress bar and still succeed."""
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"doc{n}.md").write_text(f"# Doc {n}\n\nSome text about topic {n}.\n")
    with Memwarden.init(Settings(home=home)) as mw:  # set-up, in process (as above)
        mw.add_project("atlas")

    def on_tty(*args: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
        environ.update(MEMWARDEN_HOME=str(home), COLUMNS="100", TERM="xterm")
        process = subprocess.Popen(
            [console_script(), *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=environ,
            close_fds=True,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO once the child closes the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(leader)
        return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")

    code, output = on_tty("ingest", str(docs), "-p", "atlas")
    assert code == 0, output
    assert "ingested into atlas: 3 new" in output
    code, output = on_tty("audit", "verify")
    assert code == 0 and "ledger ok" in output
