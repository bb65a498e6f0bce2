"""ChainKey's HMAC with precomputed key states is exactly HMAC-SHA256 (RFC 2104)."""

from __future__ import annotations

import hmac
import random

import pytest

from memwarden.audit.chain import ChainKey


@pytest.mark.parametrize("key_length", [16, 32, 63, 64, 65, 200])
def test_tags_and_digests_equal_the_standard_hmac(key_length: int) -> None:
    rng = random.Random(key_length)
    secret = rng.randbytes(key_length)
    key = ChainKey(secret)
    for size in (0, 1, 55, 56, 63, 64, 65, 300, 950, 5000):
        message = rng.randbytes(size)
        assert key.tag(message) == hmac.digest(secret, message, "sha256").hex()
        text = "".join(rng.choice('aé€\n"\\z😀') for _ in range(size))
        expected = hmac.digest(secret, text.encode("utf-8"), "sha256").hex()
        assert key.payload_digest(text) == expected
    # The precomputed states are copied, never consumed: the same input tags the same twice.
    assert key.tag(b"again") == key.tag(b"again")
