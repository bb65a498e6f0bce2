"""The mutation benchmark's guard against another side's garbage collection."""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path

import pytest

# The bench is not an installed package: it is imported from the checkout, as ``python -m
# bench.run`` does from the repository's root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_no_foreign_gc = importlib.import_module("bench.mutations")._no_foreign_gc


def test_collection_is_off_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with _no_foreign_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), _no_foreign_gc():
        raise RuntimeError("the raw side failed")
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with _no_foreign_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
