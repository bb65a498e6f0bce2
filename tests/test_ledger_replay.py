"""The replay invariant, and the chain under concurrent writers. Both engines.

After any sequence of operations, the last ``after`` snapshot in each memory's ledger is its
current row exactly, each row's ``before`` is the previous row's ``after``, and the chain
verifies. Concurrent writers never fork the chain and never deadlock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger_support import fresh_memwarden
from memwarden import Memwarden
from memwarden.audit import records
from memwarden.audit.actor import acting_as
from memwarden.audit.entries import state_entity_id
from memwarden.db import schema
from memwarden.errors import MemwardenError

STATEMENTS = [
    "The launch window opens in March",
    "The launch window opens in April",
    "The fuel is kerosene",
    "The rover weighs 900 kg",
    "Telemetry runs at 2 Hz",
]
TYPES = ["knowledge", "project", "preference"]
OPERATIONS = [
    "remember",
    "update",
    "promote",
    "reject",
    "invalidate",
    "supersede",
    "supersede_by",
    "reinforce",
    "expire",
    "auto_promote",
    "revert",
    "erase",
]

step = st.tuples(
    st.sampled_from(OPERATIONS),
    st.integers(min_value=0, max_value=50),  # which memory
    st.integers(min_value=0, max_value=50),  # which statement / other memory / ledger row
    st.sampled_from(TYPES),
)


def apply(mw: Memwarden, ids: list[int], op: str, pick: int, other: int, type_: str) -> None:
    """One operation; the lifecycle may refuse it (then it must change nothing)."""
    statement = STATEMENTS[other % len(STATEMENTS)]
    if op == "remember" or not ids:
        result = mw.remember(
            "atlas", statement, type_, status="candidate" if pick % 2 else "active"
        )
        if result.memory.id not in ids:
            ids.append(result.memory.id)
        return
    memory_id = ids[pick % len(ids)]
    if op == "update":
        mw.update(memory_id, content=f"{statement} (v{pick})", confidence=(other % 10) / 10)
    elif op in ("promote", "reject", "invalidate", "reinforce", "expire", "auto_promote"):
        getattr(mw, op)(memory_id, note=f"step {pick}")
    elif op == "supersede":
        _, successor = mw.supersede(memory_id, content=f"{statement} (new {pick})")
        if successor.id not in ids:
            ids.append(successor.id)
    elif op == "supersede_by":
        mw.supersede(memory_id, by=ids[other % len(ids)])
    elif op == "revert":
        history = mw.history(memory_id)
        mw.revert(memory_id, history[other % len(history)].seq, note="put back")
    elif op == "erase":
        mw.erase(memory_id, "privacy request")


def check_replay(mw: Memwarden, ids: list[int]) -> None:
    for memory_id in ids:
        current = mw.get(memory_id).snapshot()
        history = mw.history(memory_id)
        assert history, f"memory {memory_id} has no ledger rows"
        assert history[0].action == "created"
        assert history[-1].after == current, f"replay of memory {memory_id} differs"
        erased = current["status"] == "erased"
        for earlier, later in zip(history, history[1:], strict=False):
            if erased:
                assert earlier.after is None and earlier.erased
            else:
                assert later.before == earlier.after, f"gap before ledger row {later.seq}"
    report = mw.verify()
    assert report.ok, report.reason


def run_sequence(engine: str, steps: list[tuple[str, int, int, str]], root: Path) -> None:
    with fresh_memwarden(engine, root) as mw:
        ids: list[int] = []
        for op, pick, other, type_ in steps:
            try:
                with acting_as(f"step-{op}"):
                    apply(mw, ids, op, pick, other, type_)
            except MemwardenError:
                pass
        check_replay(mw, ids)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_replaying_the_ledger_reproduces_every_memory(engine: str, tmp_path: Path) -> None:
    """25 fresh databases of up to 15 steps each: about 10 s on SQLite and 25 s on
    PostgreSQL on an idle 2-core machine (each example migrates a new database)."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(st.lists(step, min_size=1, max_size=15))
    def run(steps: list[tuple[str, int, int, str]]) -> None:
        run_sequence(engine, steps, tmp_path)

    run()


def test_a_refused_operation_leaves_the_replay_intact(mw: Memwarden) -> None:
    """A hand-picked sequence through every operation, with refusals in between."""
    ids: list[int] = []
    script = [
        ("remember", 1, 0, "knowledge"),
        ("remember", 0, 2, "knowledge"),
        ("promote", 0, 0, "knowledge"),
        ("promote", 0, 0, "knowledge"),  # second is refused
        ("reinforce", 0, 0, "knowledge"),
        ("update", 0, 3, "knowledge"),
        ("supersede", 0, 4, "knowledge"),
        ("revert", 0, 0, "knowledge"),
        ("reject", 1, 0, "knowledge"),
        ("revert", 1, 0, "knowledge"),
        ("erase", 1, 0, "knowledge"),
        ("remember", 1, 0, "knowledge"),
        ("expire", 3, 0, "knowledge"),
        ("invalidate", 2, 0, "knowledge"),
    ]
    refused = 0
    for op, pick, other, type_ in script:
        try:
            apply(mw, ids, op, pick, other, type_)
        except MemwardenError:
            refused += 1
    assert refused >= 2
    assert len(ids) >= 3
    check_replay(mw, ids)


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.parametrize("threads,per_thread", [(8, 50)])
def test_concurrent_writers_never_fork_the_chain(
    mw: Memwarden, threads: int, per_thread: int
) -> None:
    start_seq = mw.anchor().seq
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with acting_as(f"writer-{n}"):
                for i in range(per_thread):
                    if i % 5 == 4:
                        # Every writer also restates one shared statement: row locks and the
                        # unique index contend with the chain lock.
                        mw.remember("atlas", "A statement every writer repeats")
                    elif i % 5 == 3 and n % 2 == 0:
                        mw.set_state("atlas", "shared", "counter", f"{n}-{i}")
                    else:
                        memory = mw.remember("atlas", f"writer {n} fact {i}").memory
                        if i % 2:
                            mw.promote(memory.id)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    started = time.perf_counter()
    workers = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    elapsed = time.perf_counter() - started
    assert not any(worker.is_alive() for worker in workers), "writers hung (deadlock?)"
    assert not errors, errors[:3]
    with mw.store.read() as conn:
        seqs = list(
            conn.execute(sa.select(schema.ledger.c.seq).order_by(schema.ledger.c.seq)).scalars()
        )
        actors = dict(
            conn.execute(
                sa.select(schema.ledger.c.actor, sa.func.count())
                .where(schema.ledger.c.seq > start_seq)
                .group_by(schema.ledger.c.actor)
            ).all()
        )
    assert seqs == list(range(1, len(seqs) + 1)), "the chain has gaps or forks"
    for n in range(threads):
        # One row per operation, plus one per promote of an odd-numbered new memory.
        promotes = sum(
            1 for i in range(per_thread) if i % 5 != 4 and not (i % 5 == 3 and n % 2 == 0) and i % 2
        )
        assert actors[f"writer-{n}"] == per_thread + promotes, (n, actors)
    # The shared state key was set by four writers at once: its rows still link up.
    with mw.store.read() as conn:
        state_rows = records.history(
            conn, "project_state", state_entity_id("atlas", "shared", "counter")
        )
    assert state_rows[0].before is None
    for earlier, later in zip(state_rows, state_rows[1:], strict=False):
        assert later.before == earlier.after
    assert state_rows[-1].after == mw.get_state("atlas", "shared", "counter").snapshot()
    report = mw.verify()
    assert report.ok, report.reason
    assert report.rows_checked == len(seqs)
    print(f"{threads}x{per_thread} writers: {len(seqs) - start_seq} rows in {elapsed:.2f}s")
