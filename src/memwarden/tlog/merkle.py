"""RFC 6962 (and RFC 9162 §2.1) Merkle tree hashing, inclusion and consistency proofs.

Standalone: the standard library only. Leaves are hashed ``SHA-256(0x00 || data)`` and
interior nodes ``SHA-256(0x01 || left || right)``, so a leaf can never pass for a node; the
tree of ``n`` leaves splits at the largest power of two below ``n``. The verification
algorithms are RFC 9162's, which reject every proof of the wrong length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or arguments no proof can have."""


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` at least 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of leaf hashes (iteratively, through a frontier)."""
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


# A subtree's hash from the leaf range [start, end): how proofs reach the tree they prove.
SubtreeHash = Callable[[int, int], bytes]


def list_subtree(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A ``SubtreeHash`` over leaf hashes held in memory (tests, small trees)."""

    def mth(start: int, end: int) -> bytes:
        if end - start == 0:
            return EMPTY_ROOT
        if end - start == 1:
            return leaf_hashes[start]
        k = split_point(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, bottom first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start = start + k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.2."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from {old_size} leaves to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []

    def subproof(m: int, start: int, end: int, whole: bool) -> None:
        n = end - start
        if m == n:
            if not whole:
                proof.append(subtree(start, end))
            return
        k = split_point(n)
        if m <= k:
            subproof(m, start, start + k, whole)
            proof.append(subtree(start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            proof.append(subtree(start, start + k))

    subproof(old_size, 0, new_size, True)
    return proof


def _check_hashes(proof: Sequence[bytes], *hashes: bytes) -> None:
    for value in (*proof, *hashes):
        if len(value) != HASH_SIZE:
            raise ProofError(f"a hash of {len(value)} bytes where SHA-256 gives {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_hashes(proof, leaf)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofError`` unless ``leaf`` is leaf ``index`` of the tree ``root`` of ``size``."""
    _check_hashes((), root)
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ``ProofError`` unless the tree ``new_root`` extends ``old_root`` (RFC 9162
    §2.1.4.2): its first ``old_size`` leaves are exactly the older tree's."""
    _check_hashes(proof, old_root, new_root)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same {old_size} leaves")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees need")
    if fr != old_root:
        raise ProofError(f"the first {old_size} leaves no longer hash to the older root")
    if sr != new_root:
        raise ProofError("the consistency proof does not lead to the newer root")


class Frontier:
    """The right edge of a growing tree: one complete subtree hash per set bit of its size,
    largest first. Appending a leaf costs O(1) amortised; the root costs O(log n)."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ProofError(f"a frontier of {size} leaves holds {bin(size).count('1')} hashes")
        _check_hashes(hashes)
        self.size = size
        self.hashes = list(hashes)

    def append(
        self, leaf: bytes, completed: Callable[[int, int, bytes], None] | None = None
    ) -> None:
        """Add a leaf hash. ``completed(level, index, hash)`` hears of every complete subtree
        this closes (level 0 is the leaf itself; ``index`` counts subtrees of that level)."""
        self.hashes.append(leaf)
        size = self.size
        level = 0
        if completed is not None:
            completed(0, size, leaf)
        while size & 1:
            right = self.hashes.pop()
            left = self.hashes.pop()
            merged = node_hash(left, right)
            self.hashes.append(merged)
            size >>= 1
            level += 1
            if completed is not None:
                completed(level, ((self.size + 1) >> level) - 1, merged)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(left, root)
        return root

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))
