"""The standalone Merkle module against RFC 6962's published vectors, and by property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memwarden.tlog import merkle
from memwarden.tlog.merkle import ProofError

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "rfc6962_vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]


def h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_roots_match_the_reference_tree_heads() -> None:
    assert merkle.root_of([]).hex() == VECTORS["empty_root"]
    for size in range(1, 9):
        assert merkle.root_of(LEAVES[:size]) == ROOTS[size - 1], size
        assert merkle.list_subtree(LEAVES)(0, size) == ROOTS[size - 1]


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: f"{v['leaf']}-{v['size']}")
def test_inclusion_vectors(vector: dict[str, object]) -> None:
    index, size = int(vector["leaf"]) - 1, int(vector["size"])  # type: ignore[call-overload]
    proof = h(vector["proof"])  # type: ignore[arg-type]
    assert merkle.inclusion_proof(index, size, merkle.list_subtree(LEAVES)) == proof
    merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])
    # The corruptions transparency-dev tries: each must fail.
    bad = [
        (index + 1, size, LEAVES[index], proof),
        (index, size * 2, LEAVES[index], proof),
        (index, size, merkle.leaf_hash(b"WrongLeaf"), proof),
        (index, size, LEAVES[index], [*proof, ROOTS[size - 1]]),
        (index, size, LEAVES[index], [ROOTS[size - 1], *proof]),
    ]
    if proof:
        bad.append((index, size, LEAVES[index], proof[:-1]))
    for args in bad:
        if args[0] >= args[1]:
            continue
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args, ROOTS[size - 1])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency"], ids=lambda v: f"{v['size1']}-{v['size2']}"
)
def test_consistency_vectors(vector: dict[str, object]) -> None:
    old, new = int(vector["size1"]), int(vector["size2"])  # type: ignore[call-overload]
    proof = h(vector["proof"])  # type: ignore[arg-type]
    assert merkle.consistency_proof(old, new, merkle.list_subtree(LEAVES)) == proof
    merkle.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    if not proof:
        return
    for args in [
        (old - 1, new, ROOTS[old - 1], ROOTS[new - 1], proof),
        (old, new, ROOTS[new - 1], ROOTS[old - 1], proof),
        (old, new, ROOTS[old - 1], ROOTS[new - 1], []),
        (old, new, ROOTS[old - 1], ROOTS[new - 1], proof[:-1]),
        (old, new, ROOTS[old - 1], ROOTS[new - 1], [*proof, ROOTS[old - 1]]),
        (old, new, ROOTS[old - 1], ROOTS[new - 1], [proof[0], *proof]),
    ]:
        if args[0] < 1:
            continue
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ProofError, match="not in a tree"):
        merkle.inclusion_proof(3, 3, merkle.list_subtree(LEAVES))
    with pytest.raises(ProofError, match="cannot extend"):
        merkle.verify_consistency(5, 2, ROOTS[4], ROOTS[1], [])
    with pytest.raises(ProofError, match="bytes"):
        merkle.verify_inclusion(0, 2, b"short", [LEAVES[1]], ROOTS[1])
    with pytest.raises(ProofError, match="frontier"):
        merkle.Frontier(3, [LEAVES[0]])


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    flipped = list(proof)
    value = bytearray(flipped[which])
    value[bit // 8] ^= 1 << (bit % 8)
    flipped[which] = bytes(value)
    return flipped


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
       st.integers(0, 255))  # fmt: skip
def test_inclusion_property(size_index: tuple[int, int], bit: int) -> None:
    size, index = size_index
    leaves = _leaves(size)
    root = merkle.root_of(leaves)
    proof = merkle.inclusion_proof(index, size, merkle.list_subtree(leaves))
    merkle.verify_inclusion(index, size, leaves[index], proof, root)
    for which in range(len(proof)):
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, leaves[index], _flip(proof, which, bit), root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, _flip([leaves[index]], 0, bit)[0], proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaves[index], proof, _flip([root], 0, bit)[0])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       st.integers(0, 255))  # fmt: skip
def test_consistency_property(sizes: tuple[int, int], bit: int) -> None:
    old, new = sizes
    leaves = _leaves(new)
    old_root, new_root = merkle.root_of(leaves[:old]), merkle.root_of(leaves)
    proof = merkle.consistency_proof(old, new, merkle.list_subtree(leaves))
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    for which in range(len(proof)):
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, old_root, new_root, _flip(proof, which, bit))
    flipped_old = _flip([old_root], 0, bit)[0]
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, flipped_old, new_root, proof)
    # A rewritten past is never consistent: change one leaf below ``old``.
    rewritten = list(leaves)
    rewritten[old - 1] = merkle.leaf_hash(b"rewritten")
    other_root = merkle.root_of(rewritten)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, other_root, proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 600))
def test_frontier_reports_every_complete_subtree(size: int) -> None:
    leaves = _leaves(size)
    seen: dict[tuple[int, int], bytes] = {}
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf, lambda level, index, value: seen.__setitem__((level, index), value))
    assert frontier.root() == merkle.root_of(leaves) == merkle.list_subtree(leaves)(0, size)
    mth = merkle.list_subtree(leaves)
    for (level, index), value in seen.items():
        assert value == mth(index << level, (index + 1) << level)
    assert len(seen) == sum(size >> level for level in range(size.bit_length() + 1))
    again = merkle.Frontier(frontier.size, frontier.hashes)
    assert again.root() == frontier.root()
