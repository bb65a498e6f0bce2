"""The witness is advanced before a mutation is acknowledged, and a witness that cannot be
written is loud: a critical alert once per episode (resolved when writes succeed again),
``/health`` degraded, ``audit verify`` reporting the lag, strict mode refusing, and never a
temporary file left behind. Faults are real: a read-only bind mount and a full tmpfs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from api_support import client_for
from ledger_support import attacker, delete_rows, head_seq, in_threads, witness_file
from memwarden import Memwarden, Settings
from memwarden.audit.witness import Head, Prepared, WitnessWriteError
from memwarden.db import schema
from memwarden.errors import LedgerError
from memwarden.observability.faults import faults

TRIALS = 20
WITNESS_TITLE = "Ledger witness cannot be written"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _alerts(settings: Settings) -> list[dict[str, object]]:
    path = settings.resolved_alert_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _memory_count(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.memories)).scalar())


def _leftovers(folder: Path) -> list[str]:
    """Temporary files beside the witness (its lock and its spare, rewritten in place, are
    not: they are there for good)."""
    expected = {"ledger.head", "ledger.head.lock", "ledger.head.spare"}
    return sorted(
        p.name
        for p in folder.iterdir()
        if (p.name.startswith("ledger.head") or p.name.endswith(".tmp")) and p.name not in expected
    )


# -- section 3: no acknowledged row can be cut unnoticed ---------------------------------------
def test_a_tail_cut_right_after_a_commit_is_caught_every_time(mw: Memwarden) -> None:
    """The cut rows used to be laundered: the next commits descended from the older witnessed
    head and the witness moved over them. Now every trial is caught, by the next write (the
    integrity alert) and by verify."""
    for trial in range(TRIALS):
        mw.remember("atlas", f"Acknowledged fact {trial}")
        cut = head_seq(mw)
        with attacker(mw) as conn:
            delete_rows(conn, cut)
        # More writes from the same live process, at once.
        mw.remember("atlas", f"Written after the cut {trial}")
        mw.remember("atlas", f"And another {trial}")
        report = mw.verify()
        assert not report.ok, f"trial {trial}: the cut of row {cut} went unnoticed"
        assert report.first_bad_seq == cut
        assert "rolled back and rewritten" in (report.reason or "")
        assert witness_file(mw)["seq"] == cut  # never advanced over the break
        mw.reset_witness(force=True)  # the operator's recovery, so the next trial starts sound
        assert mw.verify().ok
    mw.alerts.drain(10.0)
    disagreements = [
        a
        for a in _alerts(mw.settings)
        if a.get("title") == "Ledger chain disagrees with its witness"
    ]
    # The first write after each cut already raised the alarm (and so did the next one).
    assert len(disagreements) >= TRIALS


def test_a_cut_after_a_missed_witness_write_is_never_laundered(
    mw: Memwarden, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The appender caches the witnessed head it last saw the chain hold. When one witness
    write is missed (fail-open), the witness stays at a head the cache vouches for; a cut of
    the rows from there on, refilled by later writes, used to be taken on the cache's word
    once the chain was longer again, and the witness moved over the cut."""
    mw.remember("atlas", "Acknowledged fact")
    witness = mw.ledger.witness
    assert witness is not None
    real_prepare = witness.prepare
    missed: list[int] = []

    def miss_once(head: Head) -> Prepared | None:
        if not missed:
            missed.append(head.seq)
            raise WitnessWriteError("simulated: the disk refused this one write")
        return real_prepare(head)

    monkeypatch.setattr(witness, "prepare", miss_once)
    mw.remember("atlas", "Committed while the witness write failed")
    witnessed = witness_file(mw)["seq"]
    assert missed and head_seq(mw) == witnessed + 1  # the witness lags by the missed row
    with attacker(mw) as conn:
        delete_rows(conn, witnessed, witnessed + 1)
    for index in range(4):  # refill the chain to past the witnessed head
        mw.remember("atlas", f"Written after the cut {index}")
    assert head_seq(mw) > witnessed
    assert witness_file(mw)["seq"] == witnessed, "the witness moved over the cut"
    report = mw.verify()
    assert not report.ok and report.first_bad_seq == witnessed


def test_the_witness_is_at_the_head_when_a_write_returns(mw: Memwarden) -> None:
    for index in range(5):
        mw.remember("atlas", f"Fact {index}")
        assert witness_file(mw)["seq"] == head_seq(mw)
    assert _leftovers(mw.settings.resolved_witness_file.parent) == []


_WRITER = textwrap.dedent(
    """
    import sys
    from memwarden import Memwarden, Settings
    settings = Settings(home=sys.argv[1], database_url=sys.argv[2] or None)
    with Memwarden(settings) as mw:
        for index in range(int(sys.argv[4])):
            mw.remember("atlas", f"writer {sys.argv[3]} fact {index}")
    """
)


def test_several_processes_share_one_store_and_witness(mw: Memwarden) -> None:
    settings = mw.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMWARDEN_")}
    env["PYTHONPATH"] = SRC
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                str(settings.home),
                settings.database_url or "",
                str(name),
                "10",
            ],
            env=env,
        )
        for name in range(2)
    ]
    try:
        codes = [writer.wait(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    assert codes == [0, 0]
    report = mw.verify()
    assert report.ok, report.reason
    assert witness_file(mw)["seq"] == head_seq(mw) and report.lag is None
    assert _leftovers(settings.resolved_witness_file.parent) == []


# -- section 2: an unwritable witness is loud --------------------------------------------------
@contextmanager
def read_only_bind(folder: Path, view: Path) -> Iterator[Callable[[bool], None]]:
    """``view`` shows ``folder``; the callable turns it read-only (True) or writable (False)."""
    view.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(folder), str(view)], check=True)

    def read_only(on: bool) -> None:
        flag = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{flag},bind", str(view)], check=True)

    try:
        yield read_only
    finally:
        subprocess.run(["umount", str(view)], check=True)


@contextmanager
def full_tmpfs(folder: Path) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # no space left: that is the point
    finally:
        os.close(fd)
    return filler


def _settings_with_witness(settings: Settings, witness: Path, **more: object) -> Settings:
    return settings.model_copy(update={"ledger_witness_file": witness, **more})


def _check_loud_then_recovered(mw: Memwarden, folder: Path, break_it, heal_it) -> None:  # type: ignore[no-untyped-def]
    """Shared by the read-only and the disk-full cases."""
    break_it()
    try:
        # Commits go on (each acknowledged and true) until the witness cannot follow: at once
        # in a read-only folder; on a full disk, once the witness file has to grow (it is
        # rewritten in place, so until then it needs no new space and is truly written).
        for index in range(200):
            created = mw.remember("atlas", f"Committed while the disk is stuck {index}")
            assert mw.get(created.memory.id).content.endswith(str(index))
            if faults.active():
                break
            assert witness_file(mw)["seq"] == head_seq(mw)
        lagging_from = head_seq(mw)
        for index in range(2):
            mw.remember("atlas", f"Committed while the witness is stuck {index}")
        assert _leftovers(folder) == []
        assert [f.key for f in faults.active()] == ["ledger_witness_unwritable"]
        with client_for(mw) as client:
            health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "ledger_witness_unwritable" in [f["key"] for f in health["faults"]]
        report = mw.verify()
        assert not report.ok and report.lag is not None
        assert report.lag["rows"] == 3 and report.lag["from_seq"] == lagging_from
        assert report.lag["since"] and "lags the chain by 3 row(s)" in (report.reason or "")
        # Strict mode refuses instead: nothing committed.
        strict = Memwarden(mw.settings.model_copy(update={"ledger_strict": True}))
        try:
            count = _memory_count(strict)
            with pytest.raises(LedgerError, match="cannot be written.*strict mode.*refused"):
                strict.remember("atlas", "Refused in strict mode")
            assert _memory_count(strict) == count
        finally:
            strict.close()
        assert _leftovers(folder) == []
    finally:
        heal_it()
    mw.remember("atlas", "The witness is writable again")
    assert faults.active() == []
    assert mw.verify().ok
    assert _leftovers(folder) == []
    mw.alerts.drain(10.0)
    alerts = _alerts(mw.settings)
    raised = [a for a in alerts if a.get("event") == "alert" and a.get("title") == WITNESS_TITLE]
    assert len(raised) == 1 and raised[0]["severity"] == "critical"  # once per episode
    assert any(a.get("event") == "alert_resolved" for a in alerts)


def test_a_read_only_witness_folder_is_loud(settings: Settings, tmp_path: Path) -> None:
    folder, view = tmp_path / "witness", tmp_path / "witness-view"
    folder.mkdir()
    with read_only_bind(folder, view) as read_only:
        configured = _settings_with_witness(settings, view / "ledger.head")
        with Memwarden.init(configured) as mw:
            mw.add_project("atlas")
            _check_loud_then_recovered(
                mw, folder, lambda: read_only(True), lambda: read_only(False)
            )


def test_writer_threads_on_the_tail_with_an_unwritable_witness_all_return_and_report_the_lowest(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """PostgreSQL, eight threads appending on the process's tail, whose WAL flush and witness
    write are shared by rounds (``Tail.flushes``): with the witness's folder read-only, every
    mutation is still acknowledged (fail-open: no caller sees the round's failed write), the
    fault names the lowest head left unwitnessed, and once the folder is writable again the next
    write catches the witness up."""
    folder, view = tmp_path / "witness", tmp_path / "witness-view"
    folder.mkdir()
    with read_only_bind(folder, view) as read_only:
        settings = Settings(
            home=tmp_path / "home",
            database_url=pg_schema_url,
            ledger_witness_file=view / "ledger.head",
        )
        with Memwarden.init(settings) as mw:
            mw.add_project("atlas")
            mw.remember("atlas", "primes the tail")
            witnessed = int(witness_file(mw)["seq"])
            read_only(True)
            try:

                def writer(index: int) -> None:
                    for unit in range(5):
                        mw.remember("atlas", f"writer {index} unit {unit}")

                in_threads(8, writer)  # every call returns: none raises
                assert head_seq(mw) == witnessed + 40  # every mutation acknowledged and there
                assert int(witness_file(mw)["seq"]) == witnessed
                assert mw.ledger.witness is not None
                failing = mw.ledger.witness.failing_since
                assert failing is not None and failing.seq == witnessed + 1
                assert [f.key for f in faults.active()] == ["ledger_witness_unwritable"]
            finally:
                read_only(False)
            mw.remember("atlas", "catches the witness up")
            assert int(witness_file(mw)["seq"]) == head_seq(mw)
            assert mw.ledger.witness.failing_since is None and faults.active() == []
            assert mw.verify().ok


def test_a_full_disk_under_the_witness_is_loud(settings: Settings, tmp_path: Path) -> None:
    with full_tmpfs(tmp_path / "witness") as folder:
        configured = _settings_with_witness(settings, folder / "ledger.head")
        with Memwarden.init(configured) as mw:
            mw.add_project("atlas")
            filler: list[Path] = []
            _check_loud_then_recovered(
                mw,
                folder,
                lambda: filler.append(_fill(folder)),
                lambda: filler[0].unlink(),
            )


def test_a_lag_found_on_open_is_a_fault(mw: Memwarden) -> None:
    """A process killed between its commit and its witness (or one that could not write it)
    leaves the witness behind: the next process to open the store says so."""
    settings = mw.settings
    kept = witness_file(mw)
    mw.remember("atlas", "Committed, never witnessed")
    settings.resolved_witness_file.write_text(json.dumps(kept))  # as if never advanced
    leftover = settings.resolved_witness_file.with_name("ledger.head.999999999.1.tmp")
    leftover.write_text("{}")  # what a killed writer leaves
    mw.close()
    with Memwarden(settings) as again:
        assert again.open_check is not None and again.open_check.lag is not None
        assert [f.key for f in faults.active()] == ["ledger_witness_lagging"]
        assert not leftover.exists()
        again.remember("atlas", "This write catches the witness up")
        assert faults.active() == []
        assert again.verify().ok


def test_the_witness_body_is_the_json_it_always_was() -> None:
    """The body is built by hand (the identity once per witness, strings without json.dumps's
    wrapper): the text is json.dumps's, byte for byte, for any ids and tags, closed by the
    CRC-32 of what comes before its key."""
    from memwarden.audit.witness_format import body as _body

    def by_json(database_id: str, key_id: str, head: Head, trail: tuple[Head, ...]) -> bytes:
        entries = ",".join(f"[{h.seq}, {json.dumps(h.tag)}]" for h in trail)
        opening = (
            f'{{"database_id": {json.dumps(database_id)}, "key_id": {json.dumps(key_id)}, '
            f'"seq": {head.seq}, "tag": {json.dumps(head.tag)}, "trail": [{entries}]'
        ).encode()
        return opening + f', "crc32": {zlib.crc32(opening)}}}'.encode()

    trail = (Head(1, "a" * 64), Head(2, 'b\u00e9"\\\n' * 3))
    for database_id, key_id in [("db-1", "k" * 16), ('d\u00e9j\u00e0 "vu"\t', "\U0001f512")]:
        for head in [Head(3, "c" * 64), Head(10**12, "t\u00fcg")]:
            for given in [(), trail]:
                body = _body(database_id, key_id, head, given)
                assert body == by_json(database_id, key_id, head, given)
                parsed = json.loads(body)
                assert (parsed["database_id"], parsed["key_id"]) == (database_id, key_id)
                assert (parsed["seq"], parsed["tag"]) == (head.seq, head.tag)


def test_a_symbolic_link_at_the_spare_is_never_written_through(
    mw: Memwarden, tmp_path: Path
) -> None:
    """Someone who can write in the witness's folder puts a link at the spare's name: the next
    commit wrote the witness over the file it named (as memwarden's user) and swapped the link
    in as the witness (found by an attack session). Now the write fails loudly (the witness's
    fault, fail-open for the mutation), the named file is untouched, and the witness recovers
    once the link is gone."""
    assert mw.ledger.witness is not None
    witness = mw.ledger.witness
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    mw.remember("atlas", "before")
    witness.spare.unlink(missing_ok=True)
    witness.spare.symlink_to(victim)
    mw.remember("atlas", "while the spare is a link")  # acknowledged: the witness fails open
    assert victim.read_text() == "do not overwrite"
    assert not witness.path.is_symlink()
    assert "ledger_witness_unwritable" in [f.key for f in faults.active()]
    witness.spare.unlink()
    mw.remember("atlas", "after")
    assert int(witness_file(mw)["seq"]) == head_seq(mw)
    assert mw.verify().ok
