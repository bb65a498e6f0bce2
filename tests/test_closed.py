"""A closed memwarden refuses every call that reads or writes, and no writer of its own outlives
``close`` to write on a pool the close let go of.

Before, a call after ``close`` ran on a pool SQLAlchemy opened anew: a mutation committed (with
its ledger entry) while the operation log, closed beside the store, dropped its record of it
without a word, and the read log's thread lived on after every close.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from structlog.testing import capture_logs

from api_support import assert_error, client_for
from memwarden import Memwarden
from memwarden.api.app import create_app
from memwarden.audit.reads import ReadLog
from memwarden.config import Settings
from memwarden.core import opening
from memwarden.core.embedding.worker import EmbedWorker
from memwarden.core.erasure.scrub import Scrubber
from memwarden.errors import ClosedError, StorageError
from memwarden.nightly import runner, scheduler
from memwarden.observability.alerts import default
from memwarden.observability.faults import active_faults
from memwarden.serving.state import Backend

CALLS: dict[str, Callable[[Memwarden, int], Any]] = {
    "remember": lambda mw, _: mw.remember("atlas", "written after the close"),
    "update": lambda mw, memory_id: mw.update(memory_id, content="changed after the close"),
    "promote": lambda mw, memory_id: mw.promote(memory_id),
    "get": lambda mw, memory_id: mw.get(memory_id),
    "recall": lambda mw, _: mw.recall("written", project="atlas"),
    "history": lambda mw, memory_id: mw.history(memory_id),
    "list_memories": lambda mw, _: mw.list_memories(project="atlas"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_closed_memwarden_refuses_the_call_and_writes_nothing(
    mw: Memwarden, settings: Settings, call: str
) -> None:
    memory = mw.remember("atlas", "written before the close").memory
    head = mw.recent(limit=1)[0].seq
    mw.close()

    with pytest.raises(ClosedError, match="memwarden was closed: nothing was read or written"):
        CALLS[call](mw, memory.id)

    reopened = Memwarden(settings)
    try:
        assert reopened.recent(limit=1)[0].seq == head  # no mutation reached the ledger
        assert [m.content for m in reopened.list_memories(project="atlas")] == [
            "written before the close"
        ]
        assert reopened.verify().ok
    finally:
        reopened.close()


def test_closing_twice_closes_each_part_once(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    for name, part in (("oplog", mw.oplog), ("store", mw.store), ("reads", mw.reads)):
        real = part.close
        monkeypatch.setattr(
            part, "close", lambda *a, _n=name, _r=real, **k: (closed.append(_n), _r(*a, **k))
        )
    mw.close()
    mw.close()
    assert sorted(closed) == ["oplog", "reads", "store"]
    assert mw.store.closed


def test_a_store_closed_first_still_lets_memwarden_close_its_writers(mw: Memwarden) -> None:
    """``close`` does not take a closed store for a closed memwarden: its alerts would stay
    installed, and a later ``emit_alert`` would land in them."""
    mw.store.close()
    mw.close()
    assert mw.alerts not in default._installed


def test_a_part_that_fails_to_close_still_leaves_the_store_closed(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A witness whose descriptor cannot be closed (or a Ctrl-C in a join) must not leave the
    store open: a second ``close`` does nothing, so the store would stay open for good."""
    witness = mw.ledger.witness
    assert witness is not None

    def fails() -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(witness, "close", fails)
    with pytest.raises(OSError, match="Input/output"):
        mw.close()
    mw.close()
    with pytest.raises(ClosedError):
        mw.remember("atlas", "written after a close that failed half way")
    assert mw.alerts not in default._installed


def test_the_read_log_writes_what_was_served_and_its_thread_ends_on_close(
    mw: Memwarden, settings: Settings
) -> None:
    memory = mw.remember("atlas", "a memory someone reads").memory
    mw.get(memory.id)
    thread = mw.reads._thread
    assert thread is not None and thread.is_alive()
    mw.close()
    assert not thread.is_alive()

    reopened = Memwarden(settings)
    try:
        assert [served.operation for served in reopened.readers(memory.id)] == ["get"]
    finally:
        reopened.close()


def test_the_scrubber_stops_quietly_when_the_store_closes_under_it(mw: Memwarden) -> None:
    scrubber = Scrubber(mw.runtime)
    scrubber.FIRST_DELAY = 0.0
    mw.close()
    with capture_logs() as logs:
        scrubber.kick()
        thread = scrubber._thread
        assert thread is not None
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not [entry for entry in logs if entry["event"] == "erase_scrub_failed"]
    with pytest.raises(ClosedError):
        scrubber.run_once()


def test_a_closed_store_opens_no_connection(mw: Memwarden) -> None:
    store = mw.store
    mw.close()
    connected: list[object] = []
    event.listen(store.engine, "connect", lambda *args: connected.append(args))
    for use in (store.read, store.read_each, store.write):
        with pytest.raises(ClosedError), use():
            pass
    with pytest.raises(ClosedError):
        store.connect()
    assert connected == []


def test_a_read_served_after_close_is_counted_as_dropped_and_starts_no_thread(
    mw: Memwarden,
) -> None:
    reads: ReadLog = mw.reads
    mw.close()
    reads.served([1, 2], "agent:late", None, "get")
    assert reads.dropped == 1
    assert reads._thread is None
    assert reads.flush(0.1)


def test_a_closed_embed_worker_queues_nothing_and_refuses_a_sweep(mw: Memwarden) -> None:
    worker = EmbedWorker(mw.store, SimpleNamespace(configured=True))  # type: ignore[arg-type]
    worker.close()
    assert worker.enqueue("memory", 1) is False
    with pytest.raises(ClosedError):
        worker.request_sweep()
    assert worker._thread is None and worker.wait(0.1)


def test_scheduled_jobs_on_a_closed_memwarden_stop_without_a_fault_or_an_alert(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a server's shutdown its memwarden closes under a job still running: that is no
    fault for an operator, and no critical alert."""
    monkeypatch.setattr(mw.checkpoints, "due", lambda: True)  # a checkpoint is due
    mw.oplog.retention_days = 30  # the sweep is on
    mw.close()
    with capture_logs() as logs:
        assert scheduler.nightly_job(lambda: mw) is None
        assert scheduler.sweep_job(lambda: mw) is None
        assert scheduler.checkpoint_job(lambda: mw) is None
    stopped = [entry["job"] for entry in logs if entry["event"] == "scheduled_job_stopped"]
    assert sorted(stopped) == ["checkpoint_job", "nightly_job", "sweep_job"]
    assert not [entry for entry in logs if entry["log_level"] in ("critical", "error")]
    assert active_faults() == []


def test_a_nightly_run_whose_memwarden_closes_under_a_step_ends_without_a_step_alert(
    mw: Memwarden,
) -> None:
    first = runner.STEPS[0].name

    def closes(inner: Memwarden, ctx: Any) -> dict[str, Any]:
        inner.close()
        inner.list_memories(project="atlas")
        return {}

    with capture_logs() as logs, pytest.raises(ClosedError):
        runner.run_nightly(mw, replace={first: closes})
    assert not [entry for entry in logs if entry["log_level"] == "critical"]


def test_a_call_made_while_close_runs_is_refused_before_it_commits(
    mw: Memwarden, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operation log closes before the store: a mutation in between (a scheduler's job
    still running at a server's shutdown) would commit with its record dropped."""
    outcomes: list[BaseException] = []
    real = mw.alerts.close

    def closes_alerts(*args: Any, **kwargs: Any) -> None:
        try:
            mw.remember("atlas", "written while close runs")
        except BaseException as exc:  # noqa: BLE001 - what the late caller saw, asserted below
            outcomes.append(exc)
        real(*args, **kwargs)

    monkeypatch.setattr(mw.alerts, "close", closes_alerts)
    mw.close()
    assert [type(exc) for exc in outcomes] == [ClosedError]
    reopened = Memwarden(settings)
    try:
        assert reopened.list_memories(project="atlas") == []
    finally:
        reopened.close()


def test_the_next_nightly_run_of_the_process_is_not_locked_out_by_one_its_close_cut_short(
    mw: Memwarden, settings: Settings
) -> None:
    def closes(inner: Memwarden, ctx: Any) -> dict[str, Any]:
        inner.close()
        inner.list_memories(project="atlas")
        return {}

    with pytest.raises(ClosedError):
        runner.run_nightly(mw, replace={runner.STEPS[0].name: closes})
    reopened = Memwarden(settings)
    try:
        run = runner.run_nightly(reopened, skip=[step.name for step in runner.STEPS])
        assert run.status == "ok"
    finally:
        reopened.close()


def test_a_flush_after_close_returns_at_once(mw: Memwarden) -> None:
    memory = mw.remember("atlas", "read once").memory
    mw.get(memory.id)
    mw.close()
    assert mw.reads.flush(30)


def test_a_request_after_its_memwarden_closed_is_a_503_that_names_no_database(
    mw: Memwarden, settings: Settings
) -> None:
    with client_for(mw) as client:
        assert client.get("/projects").status_code == 200
        mw.close()
        error = assert_error(
            client.post("/memory", json={"project": "atlas", "content": "late"}), 503, "closed"
        )
    assert error["message"] == "memwarden was closed: nothing was read or written"


def _descriptors_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds a descriptor on."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                held.append(target)
    return held


def _drop_the_erasure_receipts(mw: Memwarden, _: pytest.MonkeyPatch) -> None:
    """The check for pending erasures fails (after the alerts and the logs are opened)."""
    with mw.store.write() as unit:
        unit.conn.exec_driver_sql("DROP TABLE erasures")


def _quick_check_fails(_: Memwarden, monkeypatch: pytest.MonkeyPatch) -> None:
    """The open's last step fails (the database gone between two reads, say)."""

    def unreachable(*_args: Any) -> None:
        raise StorageError("the database could not be reached")

    monkeypatch.setattr(opening, "quick_check", unreachable)


@pytest.mark.parametrize(
    ("fault", "why"),
    [(_drop_the_erasure_receipts, "erasures"), (_quick_check_fails, "could not be reached")],
)
def test_an_open_that_fails_part_way_closes_what_it_opened(
    mw: Memwarden,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Memwarden, pytest.MonkeyPatch], None],
    why: str,
) -> None:
    """An open that fails after its alerts, logs and store were opened leaves its caller no
    object to close: the open itself closes them, and raises what went wrong."""
    fault(mw, monkeypatch)
    mw.close()
    installed = list(default._installed)
    threads = {thread.ident for thread in threading.enumerate()}

    with pytest.raises(Exception, match=why):
        Memwarden(settings)

    assert default._installed == installed  # emit_alert does not land in the failed open
    left = [t.name for t in threading.enumerate() if t.ident not in threads and t.is_alive()]
    assert left == []
    assert _descriptors_under(settings.home) == []  # the store, the witness's lock, the logs


def test_a_close_that_fails_after_a_failed_open_does_not_hide_why_the_open_failed(
    mw: Memwarden, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quick_check_fails(mw, monkeypatch)
    mw.close()

    def fails(_self: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ReadLog, "close", fails)
    with pytest.raises(StorageError, match="could not be reached") as raised:
        Memwarden(settings)
    assert any("Input/output error" in note for note in raised.value.__notes__)
    assert default._installed == []  # the parts before the one that failed were closed


def test_the_app_opens_no_memwarden_after_its_shutdown(mw: Memwarden, settings: Settings) -> None:
    """A scheduled job still running when the server shuts down asks the app for its
    memwarden after the close: it gets ``ClosedError`` (which the jobs take as "stopped"),
    not a new memwarden that nobody would close. A lifespan that starts again opens anew."""
    mw.close()  # the database is made; the app opens its own
    backend = Backend(settings)
    first = backend.get()
    backend.close()
    installed = list(default._installed)

    with pytest.raises(ClosedError):
        backend.get()
    assert default._installed == installed
    assert scheduler.checkpoint_job(backend.get) is None  # the job stops quietly

    backend.start()
    second = backend.get()
    try:
        assert second is not first
        assert second.recent(limit=1)
    finally:
        backend.close()


def test_an_app_whose_lifespan_runs_twice_serves_both_times(
    mw: Memwarden, settings: Settings
) -> None:
    mw.close()
    app = create_app(settings)
    for _ in range(2):
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert client.get("/projects").status_code == 200
    with pytest.raises(ClosedError):
        app.state.backend.get()
