"""Signed notes, checkpoints and receipts: Go's published note, and every way one is forged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memwarden.tlog.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    open_receipt,
    sign_receipt,
)

GO = json.loads((Path(__file__).parent / "fixtures" / "rfc6962_vectors.json").read_text())[
    "signed_note"
]


def test_go_sumdb_note_is_reproduced_byte_for_byte() -> None:
    signer = Signer.parse(GO["signer_key"])
    assert signer.verifier().text() == GO["verifier_key"]
    assert signer.text() == GO["signer_key"]
    assert signer.sign(GO["text"]) == GO["note"]
    assert open_note(GO["note"], Verifier.parse(GO["verifier_key"])) == GO["text"]


def test_altered_or_foreign_notes_fail() -> None:
    verifier = Verifier.parse(GO["verifier_key"])
    with pytest.raises(NoteError, match="altered"):
        open_note(GO["note"].replace("cryptography", "cryptographY"), verifier)
    other = Signer.generate("PeterNeumann")
    with pytest.raises(NoteError, match="no signature by"):
        open_note(other.sign(GO["text"]), verifier)
    with pytest.raises(NoteError, match="blank line"):
        open_note(GO["text"], verifier)
    with pytest.raises(NoteError, match="malformed signature line"):
        open_note(GO["note"] + "appended after the signature\n", verifier)
    with pytest.raises(NoteError, match="malformed signature line"):
        open_note(GO["note"].replace("\n\n", "\n\nsmuggled\n"), verifier)
    with pytest.raises(NoteError):
        Verifier.parse(GO["verifier_key"].replace("c74f20a3", "c74f20a4"))
    with pytest.raises(NoteError):
        Verifier.parse("not a key")


def test_checkpoint_round_trip_and_checks() -> None:
    signer = Signer.generate("memwarden/abc")
    checkpoint = Checkpoint("memwarden/abc", 42, bytes(range(32)), ("time 2026-12-03T05:00:00Z",))
    note = signer.sign(checkpoint.text())
    assert note.startswith("memwarden/abc\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    opened = open_checkpoint(note, signer.verifier())
    assert opened == checkpoint and opened.time == "2026-12-03T05:00:00Z"
    with pytest.raises(NoteError, match="altered"):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), signer.verifier())
    other = Signer.generate("memwarden/other")
    with pytest.raises(NoteError, match="is for log"):
        open_checkpoint(other.sign(checkpoint.text()), other.verifier())
    for bad in ("x\n01\nAAAA\n", "x\n1\nnot-base64\n", "x\n1\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_receipts() -> None:
    signer = Signer.generate("memwarden/abc")
    note = sign_receipt(signer, {"memory_id": 7, "erased_seqs": [3, 4], "reason": "gdpr\nline"})
    assert open_receipt(note, signer.verifier())["erased_seqs"] == [3, 4]
    with pytest.raises(NoteError):
        open_receipt(note.replace("[3,4]", "[3]"), signer.verifier())
