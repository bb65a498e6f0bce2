"""Signed checkpoints over the ledger, on both engines: the tree, proofs, a whole-machine
rollback caught against a published checkpoint, a rewritten past, the stored tree tampered."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from checkpoint_support import Backup
from cli_support import Cli
from ledger_support import attacker
from memwarden import Memwarden, Settings
from memwarden.audit import tree
from memwarden.core.checkpoints import CheckpointError
from memwarden.observability.faults import active_faults, faults
from memwarden.tlog import evidence, merkle
from memwarden.tlog.note import Verifier, open_checkpoint, open_receipt


@pytest.fixture(autouse=True)
def _no_faults() -> None:
    faults.reset()


def _with_folder(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "published"
    folder.mkdir()
    return settings.model_copy(update={"checkpoint_publish_dir": folder})


def _cli(settings: Settings, **env: str) -> Cli:
    url = settings.database_url
    return Cli(settings.home, url, **env)


def _fill(mw: Memwarden, n: int, label: str) -> None:
    for index in range(n):
        mw.remember("atlas", f"{label} fact {index}")


def test_tree_grows_with_new_rows_only_and_every_row_proves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        _fill(mw, 30, "first")
        first = mw.checkpoint()
        assert first.record.tree_size == 31 and first.publications == []
        _fill(mw, 9, "second")
        read: list[tuple[int, int]] = []
        real = tree.leaf_hashes

        def counted(conn: sa.Connection, first: int, last: int) -> Iterator[bytes]:
            read.append((first, last))
            return real(conn, first, last)

        monkeypatch.setattr(tree, "leaf_hashes", counted)
        head = tree.extend(mw.store)
        assert read == [(32, 40)]  # the nine new rows, nothing else
        monkeypatch.setattr(tree, "leaf_hashes", real)
        second = mw.checkpoint()
        verifier = Verifier.parse(mw.checkpoint_verifier_key())
        checkpoint = open_checkpoint(second.record.note, verifier)
        assert (checkpoint.size, checkpoint.root) == (head.size, head.root) == (40, head.root)
        # The root is RFC 6962's over the leaves, computed from scratch.
        with mw.store.read() as conn:
            leaves = [merkle.leaf_hash(tree.leaf_data(r)) for r in tree.leaf_rows(conn, 1, 40)]
        assert merkle.root_of(leaves) == checkpoint.root
        for seq in range(1, 41):
            document = mw.prove(seq)
            assert evidence.verify_document(document, verifier)["seq"] == seq
            assert evidence.row_leaf(document["row"]) == tree.leaf_data(
                tuple(document["row"][k] for k in ("seq", "entity_type", "entity_id", "project",
                      "action", "actor", "ts", "digest", "prev", "tag"))
            )  # fmt: skip
        # Against the older checkpoint too, and never beyond it.
        assert mw.prove(31, first.record.note)["tree_size"] == 31
        with pytest.raises(Exception, match="make a newer checkpoint"):
            mw.prove(32, first.record.note)
        verdict = mw.verify_checkpoint(first.record.note)
        assert verdict.ok and verdict.ledger_size == 40
        merkle.verify_consistency(
            31, 40, bytes.fromhex(first.record.root), checkpoint.root,
            [bytes.fromhex(p) for p in verdict.proof],
        )  # fmt: skip


def test_a_whole_machine_restore_fails_against_the_published_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    """Database, ledger key, witness and signing key all put back from an older backup: the
    store's own checks pass, the published checkpoint does not."""
    settings = _with_folder(settings, tmp_path)
    published = settings.checkpoint_publish_dir
    assert published is not None
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        _fill(mw, 5, "old")
        mw.checkpoint()
    backup = Backup.take(settings, tmp_path / "backup")
    with Memwarden(settings) as mw:
        _fill(mw, 5, "acknowledged")
        newest = mw.checkpoint()
        assert newest.published_ok and newest.record.tree_size == 11
    latest = published / "latest.checkpoint"
    assert latest.read_text() == newest.record.note

    backup.restore()
    cli = _cli(settings)
    with Memwarden(settings) as mw:
        assert mw.verify().ok  # its own key and witness agree with the old copy
        verdict = mw.verify_checkpoint(latest.read_text())
        assert not verdict.ok and verdict.ledger_size == 6
        assert "put back to an older state" in str(verdict.reason)
    line = cli.error("audit", "verify", "--checkpoint", str(latest))
    assert "holds 6 rows but the checkpoint published at" in line and "older state" in line

    # Written again after the restore: the past the checkpoint saw is gone for good.
    with Memwarden(settings) as mw:
        _fill(mw, 8, "rewritten")
        assert mw.verify().ok
        verdict = mw.verify_checkpoint(latest.read_text())
        assert not verdict.ok and "no longer hash to the root" in str(verdict.reason)
        # The next checkpoint refuses to publish over the one it contradicts, and says so.
        result = mw.checkpoint()
        (outcome,) = result.publications
        assert not outcome.ok and outcome.attempts == 1 and "rewritten" in str(outcome.error)
        assert [f.key for f in active_faults()] == ["checkpoint-publish:folder"]
    assert latest.read_text() == newest.record.note  # the published history is untouched
    line = cli.error("audit", "verify", "--checkpoint", str(latest))
    assert "no longer hash to the root" in line


def test_a_pinned_key_rejects_a_store_that_swapped_its_key(
    settings: Settings, tmp_path: Path
) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        note = mw.checkpoint().record.note
        kept_key = mw.checkpoint_verifier_key()
    settings.resolved_checkpoint_key_file.unlink()
    Memwarden.init(settings).close()  # a new key, as an attacker (or a careless init) would
    cli = _cli(settings)
    key_file = tmp_path / "kept.vkey"
    key_file.write_text(kept_key + "\n")
    with Memwarden(settings) as mw:
        forged = mw.checkpoint().record.note
        assert mw.verify_checkpoint(note, kept_key).ok
        verdict = mw.verify_checkpoint(forged, kept_key)
        assert not verdict.ok and "does not verify" in str(verdict.reason)
    forged_file = tmp_path / "forged.checkpoint"
    forged_file.write_text(forged)
    line = cli.error("audit", "verify", "--checkpoint", str(forged_file), "--key", str(key_file))
    assert "does not verify" in line


def test_a_tampered_stored_tree_is_refused_then_rebuilt(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored subtrees from 4 leaves up (instead of 256), so a small ledger has a few levels.
    monkeypatch.setattr(tree, "STORED_LEVEL", 2)
    monkeypatch.setattr(tree, "TILE", 4)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        _fill(mw, 20, "many")
        first = mw.checkpoint()
        _fill(mw, 3, "more")
        with attacker(mw) as conn:
            conn.execute(
                sa.update(tree.N)
                .where(tree.N.c.level == 4, tree.N.c.idx == 0)
                .values(hash="00" * 32)
            )
        with pytest.raises(CheckpointError, match="refusing to sign"):
            mw.checkpoint()
        assert [f.key for f in active_faults()] == ["checkpoint-tree"]
        with pytest.raises(CheckpointError, match="does not lead to the checkpoint's root"):
            mw.prove(20)
        report = mw.rebuild_tree()
        assert not report.ok and "over rows 1..16" in report.mismatches[0]
        # The ledger itself is sound: verify against the published head says so, and warns.
        verdict = mw.verify_checkpoint(first.record.note)
        assert verdict.ok and verdict.tree_mismatches
        assert mw.rebuild_tree(repair=True).size == 24
        assert mw.rebuild_tree().ok
        assert mw.checkpoint().record.tree_size == 24
        assert active_faults() == []
        assert evidence.verify_document(mw.prove(20), Verifier.parse(mw.checkpoint_verifier_key()))


# Runs the copied-out tlog package with memwarden made unimportable.
STANDALONE = (
    "import runpy, sys; sys.path.insert(0, '.'); sys.modules['memwarden'] = None; "
    "runpy.run_module('tlog', run_name='__main__', alter_sys=True)"
)


def test_cli_checkpoint_prove_export_and_the_offline_verifier(
    settings: Settings, tmp_path: Path
) -> None:
    cli = _cli(settings)
    init = cli.json("init")
    vkey = init["checkpoint_verifier_key"]
    assert vkey.startswith("memwarden.local/") and Verifier.parse(vkey)
    assert vkey in cli.run("init").stdout
    cli.run("project", "add", "atlas")
    memory_id = cli.json(
        "memory", "add", "-p", "atlas", "-t", "project", "Launch window opens in March"
    )["memory"]["id"]
    cli.run("memory", "promote", str(memory_id))
    note = cli.run("audit", "checkpoint").stdout
    assert open_checkpoint(note, Verifier.parse(vkey)).size == 3
    cli.json("memory", "erase", str(memory_id), "--reason", "asked to forget")
    key_file = tmp_path / "log.vkey"
    key_file.write_text(vkey + "\n")

    proof_file, bundle_file = tmp_path / "proof.json", tmp_path / "bundle.json"
    cli.run("audit", "prove", "2", "--out", str(proof_file))
    cli.run("audit", "export", str(memory_id), "--out", str(bundle_file))
    bundle = json.loads(bundle_file.read_text())
    assert [entry["payload"] is None for entry in bundle["rows"]] == [True, True, False]
    assert "Launch window" not in bundle_file.read_text()

    def offline(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memwarden.tlog", "verify", str(path), "--key", str(key_file)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip

    for path in (proof_file, bundle_file):
        done = offline(path)
        assert done.returncode == 0 and done.stdout.startswith("OK: "), done.stderr
    # Standalone for real: the tlog folder copied out, run where memwarden cannot be imported.
    import shutil

    import memwarden.tlog

    apart = tmp_path / "auditor"
    shutil.copytree(Path(memwarden.tlog.__file__).parent, apart / "tlog")
    checkpoint_file = apart / "latest.checkpoint"
    checkpoint_file.write_text(note)
    for path in (checkpoint_file, bundle_file):
        done = subprocess.run(
            [sys.executable, "-I", "-c", STANDALONE, "verify", str(path), "--key", vkey],
            cwd=apart, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0 and done.stdout.startswith("OK: "), done.stderr
    bundle["rows"][2]["payload"] = bundle["rows"][2]["payload"].replace("erased", "kept")
    bundle_file.write_text(json.dumps(bundle))
    done = offline(bundle_file)
    assert done.returncode == 1 and "changed after it was attested" in done.stderr
    proof = json.loads(proof_file.read_text())
    proof["row"]["actor"] = "someone-else"
    proof_file.write_text(json.dumps(proof))
    done = offline(proof_file)
    assert done.returncode == 1 and "does not lead to the root" in done.stderr

    # The latest checkpoint (made by export) extends the first one: offline, and tampered.
    first_file, consistency_file = tmp_path / "first.checkpoint", tmp_path / "extends.json"
    first_file.write_text(note)
    cli.run(
        "audit", "extends", str(first_file), "--key", str(key_file), "-o", str(consistency_file)
    )
    done = offline(consistency_file)
    assert done.returncode == 0 and "old_size=3" in done.stdout, done.stderr
    consistency = json.loads(consistency_file.read_text())
    consistency["proof"][0] = "00" * 32
    consistency_file.write_text(json.dumps(consistency))
    done = offline(consistency_file)
    assert done.returncode == 1 and "from 3 to" in done.stderr

    assert "row 99 is not in the checkpoint's tree" in cli.error("audit", "prove", "99")
    assert "no checkpoint file" in cli.error("audit", "verify", "--checkpoint", "/nonexistent")
    assert "has no ledger rows" in cli.error("audit", "export", "4242")
    assert cli.json("audit", "rebuild-tree")["ok"] is True


def test_erase_receipts_are_signed_with_the_checkpoint_key(settings: Settings) -> None:
    with Memwarden.init(settings) as mw:
        note = mw.sign_receipt({"memory_id": 7, "erased_seqs": [2, 3], "complete": True})
        verifier = Verifier.parse(mw.checkpoint_verifier_key())
    assert open_receipt(note, verifier) == {"memory_id": 7, "erased_seqs": [2, 3], "complete": True}


def test_the_signing_key_is_apart_and_its_absence_is_clear(
    settings: Settings, tmp_path: Path
) -> None:
    same = settings.model_copy(update={"checkpoint_key_file": settings.resolved_ledger_key_file})
    with pytest.raises(Exception, match="apart from the ledger's HMAC key"):
        Memwarden.init(same)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
    settings.resolved_checkpoint_key_file.unlink()
    cli = _cli(settings)
    line = cli.error("audit", "checkpoint")
    assert "signing key" in line and "is missing" in line


def test_doctor_reports_the_key_the_tree_and_publishing(settings: Settings, tmp_path: Path) -> None:
    from memwarden.core import doctor

    def results(s: Settings) -> dict[str, tuple[str, str]]:
        report = doctor.run(s)
        return {r.name: (r.status, r.detail) for r in report.results if "checkpoint" in r.name}

    Memwarden.init(settings).close()
    found = results(settings)
    assert found["checkpoint_signing_key"][0] == "ok"
    assert found["checkpoint_tree"][0] == "ok"
    assert found["checkpoint_publishing"][0] == "warn"  # nothing leaves the machine
    folder = tmp_path / "unmounted"
    publishing = settings.model_copy(
        update={"checkpoint_publish_dir": folder, "checkpoint_publish_backoff": 0.0}
    )
    with Memwarden(publishing) as mw:
        mw.checkpoint()
    status, detail = results(publishing)["checkpoint_publishing"]
    assert status == "fail" and "is the disk mounted" in detail
    folder.mkdir()
    with Memwarden(publishing) as mw:
        mw.checkpoint()
    assert results(publishing)["checkpoint_publishing"][0] == "ok"
    settings.resolved_checkpoint_key_file.unlink()
    status, detail = results(settings)["checkpoint_signing_key"]
    assert status == "fail" and "is missing" in detail


def test_a_checkpoint_does_not_hold_up_writers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a checkpoint hashes the ledger (held here mid-way on purpose), mutations commit
    at once; the checkpoint then signs the head it started from."""
    import threading

    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        _fill(mw, 20, "before")
        hashing, release = threading.Event(), threading.Event()
        real = tree.leaf_hashes

        def slow(conn: sa.Connection, first: int, last: int) -> Iterator[bytes]:
            for leaf in real(conn, first, last):
                hashing.set()
                assert release.wait(30)
                yield leaf

        monkeypatch.setattr(tree, "leaf_hashes", slow)
        results: list[object] = []
        worker = threading.Thread(target=lambda: results.append(mw.checkpoint()))
        worker.start()
        try:
            assert hashing.wait(30)
            for index in range(3):
                mw.remember("atlas", f"written during the checkpoint {index}")
            assert mw.anchor().seq == 24  # committed while the checkpoint still hashes
        finally:
            release.set()
            worker.join(30)
        monkeypatch.setattr(tree, "leaf_hashes", real)
        (made,) = results
        assert made.record.tree_size == 21  # type: ignore[attr-defined]
        assert mw.checkpoint().record.tree_size == 24


def test_the_server_checkpoints_every_n_rows_or_t_minutes(settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from memwarden.nightly import scheduler

    assert scheduler.server_schedule(settings, lambda: None) is None  # type: ignore[arg-type,return-value]
    cadence = settings.model_copy(
        update={"checkpoint_every_rows": 5, "checkpoint_every_minutes": 60}
    )
    with Memwarden.init(cadence) as mw:
        planned = scheduler.server_schedule(cadence, lambda: mw)
        assert planned is not None and planned.get_job(scheduler.CHECKPOINT_JOB) is not None
        mw.add_project("atlas")
        assert mw.checkpoints.due()  # no checkpoint yet, and rows to cover
        assert scheduler.checkpoint_job(lambda: mw) == 1
        assert not mw.checkpoints.due()  # nothing new
        _fill(mw, 3, "few")
        assert not mw.checkpoints.due()  # 3 rows, under an hour
        assert mw.checkpoints.due(datetime.now(UTC) + timedelta(minutes=61))
        _fill(mw, 2, "enough")
        assert mw.checkpoints.due()
        assert scheduler.checkpoint_job(lambda: mw) == 6
        assert scheduler.checkpoint_job(lambda: mw) is None
    settings.resolved_checkpoint_key_file.unlink()
    with Memwarden(cadence.model_copy(update={"checkpoint_every_rows": 1})) as mw:
        mw.add_project("late")
        assert scheduler.checkpoint_job(lambda: mw) is None
        assert [f.key for f in active_faults()] == ["checkpoint-schedule"]


def test_fast_leaves_equal_the_canonical_leaves_for_awkward_fields(settings: Settings) -> None:
    """Quotes, backslashes, non-ASCII, a missing project: the leaf built
    from raw bytes is the canonical one (``tlog.evidence.row_leaf``) or falls back to it."""
    from memwarden.audit.actor import acting_as

    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        for weird in ('quo"te', "back\\slash", "naïve ☃", "plain"):
            with acting_as(f"cli:{weird}"):
                mw.set_state("atlas", "cat", f"k {weird}", "v")
        mw.create_key("ops", "admin")
        with mw.store.read() as conn:
            size = tree.ledger_size(conn)
            fast = list(tree.leaf_hashes(conn, 1, size))
            rows = list(tree.leaf_rows(conn, 1, size))
    assert size >= 6 and {r[5] for r in rows} >= {'cli:quo"te', "cli:naïve ☃"}
    assert fast == [merkle.leaf_hash(evidence.row_leaf(tree.row_dict(r))) for r in rows]


def test_a_new_database_in_an_old_home_keeps_the_old_signing_key_aside(
    settings: Settings,
) -> None:
    from memwarden.db import migrate
    from memwarden.db.store import Store

    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        old_key = mw.checkpoint_verifier_key()
    key_file = settings.resolved_checkpoint_key_file
    old_text = key_file.read_text()
    store = Store(settings)
    try:
        migrate.downgrade(store, "base")  # a new, empty database where the old one was
    finally:
        store.dispose()
    with Memwarden.init(settings) as mw:
        assert mw.checkpoint_verifier_key() != old_key
    (kept,) = key_file.parent.glob("checkpoint.key.replaced-*")
    assert kept.read_text() == old_text
    # A database with rows never has its key replaced: another database's key is an error.
    key_file.write_text(old_text)
    with Memwarden(settings) as mw:
        mw.add_project("atlas")
    with pytest.raises(Exception, match="belongs to memwarden.local/"):
        Memwarden.init(settings)


def test_concurrent_checkpoints_from_two_processes_agree(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores (as two processes) extend the same tree at once: one extends it, the other
    finds it moved and returns the same head; no duplicate nodes, no error."""
    import threading

    monkeypatch.setattr(tree, "STORED_LEVEL", 2)  # stored nodes from 4 leaves up
    monkeypatch.setattr(tree, "TILE", 4)

    with Memwarden.init(settings) as first, Memwarden(settings) as second:
        first.add_project("atlas")
        _fill(first, 30, "shared")
        barrier = threading.Barrier(2)
        heads: list[tree.TreeHead] = []
        errors: list[BaseException] = []

        def extend(mw: Memwarden) -> None:
            barrier.wait()
            try:
                heads.append(tree.extend(mw.store))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=extend, args=(mw,)) for mw in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == [] and len(heads) == 2 and heads[0] == heads[1]
        assert first.rebuild_tree().ok
