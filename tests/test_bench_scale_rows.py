"""The scale benches' bulk loader (bench/_scale_rows.py, bench/_integrity_data.py): its fast
rows are byte for byte the plain path's (memwarden's canonical_json, format_ts, ChainKey), and a
store it loads verifies, passes a full integrity scan and keeps every index."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from memwarden import Memwarden
from memwarden.audit.chain import GENESIS_TAG, ChainKey
from memwarden.audit.witness import Head

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's bench package
from bench import _integrity_data, _scale_rows

KEY = ChainKey(bytes(range(32)))
TAG = "ab" * 32


def test_fast_rows_equal_the_plain_path_for_every_kind_of_memory() -> None:
    maker = _scale_rows._Maker(KEY)
    # Every kind (id % 10), reinforcements, a time on a whole second (id 1000: no microseconds
    # in its ISO text), the last millisecond of a second, and the scale size's last ids.
    lives = list(_scale_rows._life(60, 1_000))
    assert any(actions.count("reinforced") > 10 for _, _, actions in lives)
    for memory_id in (1000, 1999, 2000, 999_999, 1_000_000):
        status, actions = _scale_rows.plan(memory_id)
        lives.append((memory_id, status, actions + ["reinforced"] * 3 * (status == "active")))
    seq, prev = 41, TAG
    for memory_id, status, actions in lives:
        fast = maker.memory(seq, prev, memory_id, status, actions)
        assert fast == _scale_rows.reference(KEY, seq, prev, memory_id, status, actions)
        seq, prev = fast[1][-1][0], fast[1][-1][-1]


def test_the_chain_runs_on_from_the_head_across_memories() -> None:
    made = list(_scale_rows.rows(KEY, Head(seq=7, tag=TAG), 30, 300))
    ledger = [row for _, rows, _ in made for row in rows]
    assert len(ledger) == 300
    assert [row[0] for row in ledger] == list(range(8, 308))
    assert ledger[0][7] == TAG
    assert all(later[7] == earlier[8] for earlier, later in zip(ledger, ledger[1:], strict=False))


def test_the_loader_stops_when_its_rows_differ_from_the_plain_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reference(*args: Any) -> Any:
        row, ledger, payloads = original(*args)
        return row, ledger, [(seq, body.replace("0.6", "0.7")) for seq, body in payloads]

    original = _scale_rows.reference
    monkeypatch.setattr(_scale_rows, "reference", reference)
    with pytest.raises(AssertionError, match="memory 1 differ"):
        next(_scale_rows.rows(KEY, Head(seq=0, tag=GENESIS_TAG), 10, None))


def test_copy_text_escapes_what_copy_reads_as_syntax() -> None:
    assert _integrity_data._copy_text('{"a":"b"}') == '{"a":"b"}'
    assert _integrity_data._copy_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"


def _indexes(mw: Memwarden) -> set[str]:
    return {
        name
        for table in _integrity_data.LOADED
        for name in (index["name"] for index in sa.inspect(mw.store.engine).get_indexes(table))
        if name
    }


def _counts(mw: Memwarden) -> tuple[int, ...]:
    with mw.store.engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            for table in ("memories", "ledger", "ledger_payloads", "source_chunks")
        )


def _load(mw: Memwarden, memories: int, ledger_rows: int) -> int:
    if mw.store.is_sqlite:
        path = mw.store.engine.url.database
        assert path is not None
        return _integrity_data.generate(
            path, mw.ledger.key, mw.anchor(), memories, lambda _n: None, ledger_rows
        )
    return _integrity_data.generate_pg(mw, memories, lambda _n: None, ledger_rows)


def test_a_loaded_store_verifies_and_scans_clean_with_its_indexes(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_integrity_data, "BATCH", 40)  # several batches through the thread
    before = _indexes(mw)
    assert _load(mw, 200, 2_000) == 2_000
    assert _indexes(mw) == before
    mw.reset_witness()
    assert mw.verify().ok
    report = mw.integrity_check(full=True)
    assert report.clean, report.to_dict()["findings"]
    assert mw.get(11).reinforcement_count > 0
    # The full-text index holds the loaded memories (SQLite's is rebuilt after the load).
    hits = mw.recall("number 11", "draco", include_chunks=False)
    assert [hit.id for hit in hits][:1] == [11]


def test_a_difference_found_while_loading_stops_the_load_and_leaves_nothing(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reference(*args: Any) -> Any:
        row, ledger, payloads = original(*args)
        return ((*row[:-1], "0" * 64) if args[3] > 1 else row), ledger, payloads

    original = _scale_rows.reference
    monkeypatch.setattr(_scale_rows, "reference", reference)
    # Memory 1 passes, memory 26 (the third batch) differs: two batches are in by then.
    monkeypatch.setattr(_scale_rows, "CHECK_EVERY", 25)
    monkeypatch.setattr(_integrity_data, "BATCH", 10)
    before = _indexes(mw), _counts(mw)
    with pytest.raises(AssertionError, match="memory 26 differ"):
        _load(mw, 50, 200)
    assert (_indexes(mw), _counts(mw)) == before
    assert mw.verify().ok
