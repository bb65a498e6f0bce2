"""Closing with vectors still queued stops the embedding thread and waits for it.

Before, ``close`` gave the queue its drain time, then queued the stop behind everything still
pending and waited 2 s: it returned with the thread inside an ONNX inference, and a process
that then exited was aborted by onnxruntime (``terminate called without an active
exception``, SIGABRT, exit status 134), after the command had reported success (`serve`
stopped by SIGTERM under a burst of writes, `ingest` of a large folder). Nothing committed is
lost either way: the vectors left are the next sweep's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from memwarden import Memwarden, Settings
from memwarden.core import vectors
from memwarden.core.embedding.worker import missing

MANY = 1000


def test_close_stops_the_thread_between_batches(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", embedder="local")
    mw = Memwarden.init(settings)
    try:
        mw.add_project("atlas")
        for index in range(MANY):
            mw.remember("atlas", f"pump seal {index} was replaced after the static fire")
        worker = mw.runtime.embed_worker
        thread = worker._thread
        assert thread is not None and thread.is_alive()
        worker.close(timeout=0)  # no drain: stop now
        assert not thread.is_alive(), "close returned with the thread still embedding"
        assert 0 < worker.failed  # the items left were counted, not embedded
        assert worker.written + worker.failed == MANY
        with mw.store.read() as conn:
            left = missing(conn, vectors.MEMORY, mw.runtime.embedders.model_id or "")
        assert len(left) == worker.failed  # a sweep finds exactly those
        assert _memories(mw) == MANY
    finally:
        mw.close()


SCRIPT = textwrap.dedent(
    """
    import sys
    from memwarden import Memwarden, Settings

    mw = Memwarden.init(Settings(embedder="local"))
    mw.add_project("atlas")
    for index in range(int(sys.argv[1])):
        mw.remember("atlas", f"valve {index} overheats in firings over 120 seconds")
    mw.runtime.embed_worker.close(timeout=0.2)
    mw.close()
    print("closed", flush=True)
    """
)


def test_a_process_that_closes_mid_burst_exits_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env.update(MEMWARDEN_HOME=str(tmp_path / "home"), MEMWARDEN_ALERT_STATE_PROJECT="")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(MANY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "closed"
    assert "terminate called" not in done.stderr
    with Memwarden(Settings(home=tmp_path / "home", embedder="none")) as mw:
        assert _memories(mw) == MANY


def _memories(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM memories")).scalar_one())
