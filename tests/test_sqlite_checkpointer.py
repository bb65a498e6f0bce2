"""SQLite's write-ahead log is folded into the database file by the store's own thread
(``db/checkpointer.py``), not by the writer whose commit crosses SQLite's threshold; a
checkpoint that fails for real (a full disk under the database file) is a fault an operator
sees, and nothing acknowledged is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from memwarden import Memwarden, Settings
from memwarden.api import create_app
from memwarden.db import checkpointer
from memwarden.observability.faults import active_faults

LOOPBACK = "http://127.0.0.1"
# A process left inside a read transaction on the database file named by its argument.
READER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
c.execute("SELECT count(*) FROM memories").fetchone()
print("reading", flush=True)
sys.stdin.readline()
"""


def _settings(tmp_path: Path, home: Path) -> Settings:
    """Key, witness and alerts file outside ``home`` (on a disk of their own when ``home``
    is on a small one)."""
    return Settings(
        home=home,
        ledger_key_file=tmp_path / "keep" / "ledger.key",
        ledger_witness_file=tmp_path / "keep" / "ledger.head",
        alert_log=tmp_path / "keep" / "alerts.log",
    )


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _wal_frames(db: Path) -> int:
    """Frames in the log (its size past the header; the log is not truncated after a reset)."""
    wal = db.with_name(db.name + "-wal")
    return max(0, (wal.stat().st_size - 32) // (4096 + 24)) if wal.exists() else 0


def test_writers_commit_without_checkpointing_and_the_thread_folds_the_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The thread is held back (no checkpoint is due) while the writers commit well past
    # SQLite's own threshold (1000 pages of log): the database file is never written by them.
    monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 10**9)
    monkeypatch.setattr(checkpointer, "IDLE_S", 3600.0)
    home = tmp_path / "home"
    mw = Memwarden.init(_settings(tmp_path, home))
    try:
        mw.add_project("atlas")
        db = home / "memwarden.db"
        mw.remember("atlas", "the first memory, before the file is looked at")
        time.sleep(0.05)
        before = db.stat()
        written = [
            mw.remember("atlas", f"memory {index}: " + "words of some length " * 20).memory.id
            for index in range(150)
        ]
        assert _wal_frames(db) > 1000  # past SQLite's own threshold
        after = db.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        assert mw.store.checkpointer is not None
        assert mw.store.checkpointer.checkpoints == 0

        # Due now: the thread checkpoints, and the file holds the log's pages.
        monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 1)
        mw.remember("atlas", "the commit that wakes the thread")
        assert _until(
            lambda: mw.store.checkpointer is not None and mw.store.checkpointer.checkpoints >= 1
        )
        assert db.stat().st_size > before.st_size
        assert active_faults() == []
        assert {m.id for m in mw.list_memories(limit=500)} >= set(written)
        assert mw.verify().ok
    finally:
        mw.close()


def test_a_connection_of_the_store_keeps_sqlite_checkpoint_as_a_backstop(mw: Memwarden) -> None:
    if not mw.store.is_sqlite:
        assert mw.store.checkpointer is None  # PostgreSQL checkpoints on the server
        return
    with mw.store.read() as conn:
        raw: Any = conn.connection.dbapi_connection
        (pages,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == checkpointer.BACKSTOP_PAGES


@contextmanager
def _small_disk(target: Path, size: str) -> Iterator[None]:
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _fill(disk: Path) -> Path:
    """A file that takes every free byte of ``disk``."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def _alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if "storage:checkpoint" in json.dumps(line)]


def test_a_checkpoint_that_fails_on_a_full_disk_is_a_fault_until_one_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "IDLE_S", 0.05)
    monkeypatch.setattr(checkpointer, "RETRY_S", 0.05)
    disk = tmp_path / "disk"
    with _small_disk(disk, "24m"):
        settings = _settings(tmp_path, disk / "home")
        mw = Memwarden.init(settings)
        try:
            mw.add_project("atlas")
            cp = mw.store.checkpointer
            assert cp is not None
            # A long log first, folded in: later commits reuse its space (SQLite restarts the
            # log from its start once every frame is in the file, and never shrinks it), so
            # they need no new bytes on the disk, while the file must grow to take new pages.
            monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 10**9)
            monkeypatch.setattr(checkpointer, "IDLE_S", 3600.0)
            for index in range(120):
                mw.remember("atlas", f"warm {index}: " + "a longer text to fill pages " * 30)
            monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 1)
            monkeypatch.setattr(checkpointer, "IDLE_S", 0.05)
            done = cp.checkpoints
            mw.remember("atlas", "wake the thread")
            assert _until(lambda: cp.checkpoints > done)
            mw.remember("atlas", "the log restarts from its start")
            assert _until(lambda: cp.checkpoints > done + 1)

            filler = _fill(disk)
            acknowledged = []
            for index in range(8):
                text = f"written on a full disk {index}: " + "new words on new pages " * 20
                acknowledged.append(mw.remember("atlas", text).memory.id)
            assert _until(lambda: cp.failures > 0)
            keys = [fault.key for fault in active_faults()]
            assert "storage:checkpoint" in keys
            app = create_app(settings, memwarden=mw)
            with TestClient(app, base_url=LOOPBACK) as client:
                health = client.get("/health").json()
                assert health["status"] == "degraded"
                assert "storage:checkpoint" in [f["key"] for f in health["faults"]]
                # A write that commits does not end it: the log is still not in the file.
                created = client.post("/memory", json={"project": "atlas", "content": "more"})
                assert created.status_code in (200, 201)
                acknowledged.append(created.json()["memory"]["id"])
            assert "storage:checkpoint" in [fault.key for fault in active_faults()]

            filler.unlink()  # room again: the next checkpoint succeeds and ends the episode
            assert _until(lambda: "storage:checkpoint" not in [f.key for f in active_faults()])
            assert cp.last_error is None
            assert {m.id for m in mw.list_memories(limit=500)} >= set(acknowledged)
            assert mw.verify().ok
        finally:
            mw.close()
        lines = _alerts(tmp_path / "keep" / "alerts.log")
        assert [line["severity"] for line in lines].count("critical") == 1  # once per episode
        assert any("resolved" in json.dumps(line).lower() for line in lines)
        # Reopened from the file alone: every acknowledged memory is there.
        with Memwarden(settings) as reopened:
            assert {m.id for m in reopened.list_memories(limit=500)} >= set(acknowledged)
            assert reopened.verify().ok
    assert not os.path.ismount(disk)


def _checkpoint_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "memwarden-sqlite-checkpoint"}


def test_no_checkpoint_thread_outlives_its_store(tmp_path: Path) -> None:
    # ``init`` writes through a store of its own before the memwarden opens: that one is
    # closed too (a thread left behind raised a fault in whatever test ran later, once its
    # database was gone).
    before = _checkpoint_threads()
    mw = Memwarden.init(_settings(tmp_path, tmp_path / "home"))
    mw.add_project("atlas")
    mw.remember("atlas", "one write: the store's thread starts")
    assert _checkpoint_threads() - before
    mw.close()
    assert not {t for t in _checkpoint_threads() - before if t.is_alive()}


def test_the_thread_retires_when_idle_and_the_next_commit_starts_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "IDLE_S", 0.02)
    monkeypatch.setattr(checkpointer, "LINGER_S", 0.1)
    with Memwarden.init(_settings(tmp_path, tmp_path / "home")) as mw:
        mw.add_project("atlas")
        cp = mw.store.checkpointer
        assert cp is not None
        mw.remember("atlas", "a first write")
        first = cp._thread
        assert first is not None
        assert _until(lambda: not first.is_alive())
        assert cp.checkpoints >= 1  # the pending commit was checkpointed before it retired
        done = cp.checkpoints
        mw.remember("atlas", "a later write")
        assert cp._thread is not None and cp._thread is not first
        assert _until(lambda: cp.checkpoints > done)


class _NoThreads:
    """``threading`` as the checkpointer sees it when no thread can be started."""

    Event = threading.Event
    Lock = threading.Lock
    current_thread = staticmethod(threading.current_thread)

    class Thread(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")


def test_a_commit_is_answered_as_committed_when_no_thread_can_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The thread retired (or never started) and none can be had: the create had committed,
    # yet the caller got the RuntimeError, and the witness was never advanced.
    monkeypatch.setattr(checkpointer, "IDLE_S", 0.02)
    monkeypatch.setattr(checkpointer, "LINGER_S", 0.05)
    with Memwarden.init(_settings(tmp_path, tmp_path / "home")) as mw:
        mw.add_project("atlas")
        cp = mw.store.checkpointer
        assert cp is not None
        assert _until(lambda: cp._thread is None)  # retired: the next commit starts one
        monkeypatch.setattr(checkpointer, "threading", _NoThreads)
        created = mw.remember("atlas", "committed while no thread could start")
        assert cp._thread is None  # the next commit tries again
        monkeypatch.undo()
        assert mw.get(created.memory.id).content == "committed while no thread could start"
        assert mw.verify().ok  # the witness followed the commit
        mw.remember("atlas", "the next commit starts the thread")
        assert cp._thread is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_checkpoints_with_locks_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 1)
    with Memwarden.init(_settings(tmp_path, tmp_path / "home")) as mw:
        mw.add_project("atlas")
        cp = mw.store.checkpointer
        assert cp is not None
        with cp.lock:  # the fork comes while the parent's thread is mid-checkpoint
            pid = os.fork()
            if pid == 0:  # the child: its first commit must lead to a checkpoint of its own
                code = 1
                try:
                    before = cp.checkpoints
                    mw.remember("atlas", "written by the child")
                    code = 0 if _until(lambda: cp.checkpoints > before, 10.0) else 2
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_a_reader_holding_the_log_back_is_a_warning_until_it_lets_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PASSIVE checkpoint copies only what no reader's snapshot needs: with a read left open
    (here a second process's connection inside a transaction) every checkpoint "succeeded"
    while the log grew without end, with no word. Held past the bounds (made small here), it
    is a warning fault in /health; it ends when the reader lets go."""
    monkeypatch.setattr(checkpointer, "HELD_PAGES", 50)
    monkeypatch.setattr(checkpointer, "HELD_S", 0.5)
    monkeypatch.setattr(checkpointer, "COMMITS_PER_CHECKPOINT", 5)
    home = tmp_path / "home"
    mw = Memwarden.init(_settings(tmp_path, home))
    try:
        mw.add_project("atlas")
        db = home / "memwarden.db"
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
            key = "storage:checkpoint_held"

            written: list[int] = []

            def held() -> bool:
                note = f"memory {len(written)} written while the log is held " * 5
                written.append(mw.remember("atlas", note).memory.id)
                return key in [f.key for f in active_faults()]

            assert _until(held, 30)
            (fault,) = [f for f in active_faults() if f.key == key]
            assert fault.severity == "warning" and "wait for a read" in fault.message
            with TestClient(create_app(mw.settings, memwarden=mw)) as client:
                body = client.get("/health").json()
            assert body["status"] == "degraded" and key in [f["key"] for f in body["faults"]]
        finally:
            assert reader.stdin is not None
            reader.stdin.write("\n")
            reader.stdin.flush()
            reader.wait(30)

        # No write needed: the thread looks again while the log is held (a review found the
        # fault stayed on a quiet store once the reader had gone).
        assert _until(lambda: key not in [f.key for f in active_faults()], 30)
        assert {m.id for m in mw.list_memories(limit=500)} == set(written)  # all kept
    finally:
        mw.close()
