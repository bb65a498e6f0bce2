"""``collector_paused``: the verify walk's and the mutation benchmark's guard against Python's
cyclic garbage collection."""

from __future__ import annotations

import gc

import pytest

from memwarden.audit.fastpath import collector_paused


def test_collection_is_off_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the raw side failed")
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
