"""`doctor` runs in a process of its own; a fault a server met is in that server's register
only. Before, `doctor` said nothing of it. It now warns of the episodes other processes report
open (their alert rows stay firing until the episode ends), and tells one whose process has
ended; `alert resolve` ends a row left behind.

The "server" here is a second process on the same store whose read records the database
refuses for real (a trigger), as in tests/test_record_loss.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_support import Cli
from core_support import inserts_refused
from memwarden import Memwarden, Settings
from memwarden.core import record_loss

FAULT = f"fault:{record_loss.READS_FAULT}"

# Serves one memory on each line it reads, flushes its read records and alerts, says so.
SERVER = textwrap.dedent(
    """
    import sys
    from memwarden import Memwarden, Settings
    from memwarden.observability.faults import active_faults

    mw = Memwarden(Settings())
    memory_id = int(sys.argv[1])
    for _ in sys.stdin:
        mw.get(memory_id)
        mw.reads.flush(10)
        mw.alerts.flush()
        print(",".join(fault.key for fault in active_faults()) or "-", flush=True)
    """
)


class Server:
    def __init__(self, settings: Settings, memory_id: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
        env.update(MEMWARDEN_HOME=str(settings.home), MEMWARDEN_EMBEDDER="none")
        env["MEMWARDEN_ALERT_STATE_PROJECT"] = ""
        if settings.database_url:
            env["MEMWARDEN_DATABASE_URL"] = settings.database_url
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(memory_id)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def serve(self) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("get\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def store(mw: Memwarden) -> Iterator[tuple[Memwarden, int]]:
    memory = mw.remember("atlas", "the umbilical retracts at T-0", status="active").memory
    yield mw, memory.id


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"], indirect=True)
def test_doctor_lists_a_fault_another_process_has_open(store: tuple[Memwarden, int]) -> None:
    mw, memory_id = store
    settings = mw.settings
    cli = Cli(settings.home, settings.database_url)
    server = Server(settings, memory_id)
    try:
        assert server.serve() == "-"
        assert FAULT not in _checks(cli)
        with inserts_refused(mw, "memory_reads"):
            assert server.serve() == record_loss.READS_FAULT
            checks = _checks(cli)
        found = checks[FAULT]
        assert found["status"] == "warn"  # the row can outlive the fault: the server's /health
        assert f"process {server.process.pid}" in found["detail"]
        assert "still runs" in found["detail"]
        assert "refused by the test policy" in found["detail"]
        # The server writes its read records again: the episode ends, and with it the row.
        assert server.serve() == "-"
        assert FAULT not in _checks(cli)
        # A server killed with its episode open: the row stays firing, and the doctor says its
        # process has ended.
        with inserts_refused(mw, "memory_reads"):
            assert server.serve() == record_loss.READS_FAULT
        server.kill()
        stale = _checks(cli)[FAULT]
        assert stale["status"] == "warn"
        assert "has ended" in stale["detail"] and f"process {server.process.pid}" in stale["detail"]
        # The next episode of that fault to end, in any process, resolves the stale row too.
        again = Server(settings, memory_id)
        try:
            with inserts_refused(mw, "memory_reads"):
                assert again.serve() == record_loss.READS_FAULT
            assert again.serve() == "-"
            assert FAULT not in _checks(cli)
            # Or an operator ends one left behind.
            with inserts_refused(mw, "memory_reads"):
                assert again.serve() == record_loss.READS_FAULT
        finally:
            again.kill()
        assert FAULT in _checks(cli)
        assert "resolved 1 firing alert(s)" in cli.run("alert", "resolve", FAULT).stdout
        assert FAULT not in _checks(cli)
        assert "no firing alert" in cli.error("alert", "resolve", FAULT)
    finally:
        if server.process.poll() is None:
            server.kill()


def _checks(cli: Cli) -> dict[str, dict[str, Any]]:
    report = json.loads(cli.run("doctor", "--json").stdout)
    return {check["name"]: check for check in report["checks"]}


def test_a_fault_alert_names_its_process(tmp_path: Path) -> None:
    from memwarden.observability.faults import faults

    with Memwarden.init(Settings(home=tmp_path / "home")) as mw:
        faults.raise_fault("disk", "Disk full", "no space left on /data")
        mw.alerts.flush()
        record = next(a for a in mw.alerts.history(limit=10) if a.title == "Disk full")
    assert record.context["pid"] == os.getpid() and record.context["fault"] == "disk"
    assert record.context["host"]
