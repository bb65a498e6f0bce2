"""``memwarden serve --workers N``: several processes over one PostgreSQL store write one
chain (no fork, the witness at its head), each worker really serving; SQLite is refused."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

from api_support import Server, free_port
from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.db import schema
from memwarden.nightly import scheduler
from memwarden.serving.leader import Leader

WRITERS = 6
WRITES_EACH = 8


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _holds(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open (the witness lock a worker keeps once it wrote)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if Path(os.readlink(fd)) == path:
                return True
        except OSError:
            continue
    return False


def test_two_workers_write_one_chain(tmp_path: Path, pg_schema_url: str) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_schema_url)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        witness_lock = mw.ledger.witness.path.with_name(mw.ledger.witness.path.name + ".lock")  # type: ignore[union-attr]
    server = Server(settings, "--workers", "2")
    try:
        server.wait_ready(timeout=60)

        rounds = iter(range(1_000_000))

        def write(writer: int) -> list[int]:
            round_ = next(rounds)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                made = []
                for n in range(WRITES_EACH):
                    # A fresh connection each time: the kernel hands it to either worker.
                    response = client.post(
                        "/memory",
                        json={
                            "project": "atlas",
                            "content": f"writer {writer} fact {n} (call {round_})",
                        },
                        headers={"Connection": "close"},
                    )
                    assert response.status_code == 201, response.text
                    made.append(int(response.json()["memory"]["id"]))
                return made

        ids: list[int] = []
        deadline = time.monotonic() + 60
        writing: list[int] = []
        # Rounds of concurrent writes until both workers have written (a worker still starting
        # takes no connection; the kernel's choice between two idle ones is its own).
        while len(writing) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(WRITERS) as pool:
                ids += [i for made in pool.map(write, range(WRITERS)) for i in made]
            writing = [pid for pid in _children(server.process.pid) if _holds(pid, witness_lock)]
        assert len(writing) == 2, "both workers should have written through the witness"
        assert len(set(ids)) == len(ids)  # every write a new memory, none lost
    finally:
        code, out, err = server.stop()
    assert code == 0, err
    assert "2 workers" in out
    with Memwarden(settings) as mw:
        report = mw.verify()
        assert report.ok, report.reason
        # One chain: every write is a row, the witness holds the head.
        assert report.head is not None and report.lag is None
        assert report.head == mw.ledger.witness.read().head  # type: ignore[union-attr]
        L = schema.ledger
        with mw.store.read() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(schema.memories))
            assert stored.scalar_one() == len(ids)
            # Every write is in the chain: a racing append that lost would have left its
            # memory without a ledger row (the ledger fails open), and verify cannot see that.
            recorded = conn.execute(
                sa.select(L.c.entity_id).where(L.c.entity_type == "memory", L.c.action == "created")
            ).scalars()
            assert {int(i) for i in recorded} == set(ids)
            rows, predecessors = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(L.c.prev_tag)))
            ).one()
            assert rows == predecessors == report.head.seq  # no fork, no gap


def test_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Memwarden.init(Settings(home=home)).close()
    error = Cli(home).error("serve", "--workers", "2", "--port", str(free_port()))
    assert error.startswith("error: --workers 2 needs PostgreSQL")


def test_one_leader_at_a_time_and_a_successor(tmp_path: Path) -> None:
    first, second = Leader(tmp_path), Leader(tmp_path)
    assert first.held() and first.held()
    assert not second.held()  # a separate open file: excluded like another process
    first.release()
    assert second.held()
    second.release()


def test_a_gated_job_does_not_run_outside_the_leader(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", oplog_retention_days=1)
    opened: list[int] = []

    def open_mw() -> Memwarden:
        opened.append(1)
        raise RuntimeError("opened")

    for gate, expect in ((lambda: False, 0), (lambda: True, 1)):
        planned = scheduler.server_schedule(settings, open_mw, gate=gate)
        assert planned is not None
        job = planned.get_job(scheduler.SWEEP_JOB)
        assert job is not None
        assert job.func(*job.args) is None
        assert len(opened) == expect
