"""The tagged header is the canonical JSON of its fields, byte for byte, whatever the strings.

``header_bytes`` is hand-built for speed; these properties hold it equal to ``canonical_json``
(sorted keys, no whitespace, UTF-8, non-ASCII kept) for awkward text in every escaped field.
The digest, the previous tag and the timestamp are written as they are: the ledger only ever
stores 64 hex digits and fixed-width timestamps there (``format_ts``), which the properties use.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from memwarden.audit.chain import canonical_json, format_ts, header_bytes, parse_ts

AWKWARD = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            [
                '"',
                "\\",
                "/",
                "\b",
                "\f",
                "\n",
                "\r",
                "\t",
                "\x00",
                "\x1f",
                "\x7f",
                "\u2028",
                "\u2029",
                "\ufeff",
                "é",
                "𝄞",
                "中",
                "\u0301",
            ]
        ),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
)
HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    entity_type=AWKWARD,
    entity_id=AWKWARD,
    project=st.none() | AWKWARD,
    action=AWKWARD,
    actor=AWKWARD,
    moment=MOMENTS,
    digest=HEX,
    prev=HEX,
)
@example(0, '"', "\\", None, "\n", "\u2028", datetime(2026, 1, 1, tzinfo=UTC), "0" * 64, "f" * 64)
def test_header_bytes_is_canonical_json(
    seq: int,
    entity_type: str,
    entity_id: str,
    project: str | None,
    action: str,
    actor: str,
    moment: datetime,
    digest: str,
    prev: str,
) -> None:
    ts = format_ts(moment)
    fields = {
        "action": action,
        "actor": actor,
        "digest": digest,
        "entity_id": entity_id,
        "entity_type": entity_type,
        "prev": prev,
        "project": project,
        "seq": seq,
        "ts": ts,
    }
    built = header_bytes(seq, entity_type, entity_id, project, action, actor, ts, digest, prev)
    assert built == canonical_json(fields).encode("utf-8")
    assert json.loads(built) == fields


@given(MOMENTS)
def test_timestamps_are_fixed_width_and_round_trip(moment: datetime) -> None:
    text = format_ts(moment)
    assert len(text) == 27 and text.endswith("Z")
    assert parse_ts(text) == moment


def test_field_boundaries_cannot_be_shifted() -> None:
    """Moving text from one field into its neighbour changes the header (no ambiguity)."""
    one = header_bytes(
        1,
        "memory",
        'a","entity_type":"x',
        "p",
        "created",
        "me",
        format_ts(datetime(2026, 1, 1, tzinfo=UTC)),
        "0" * 64,
        "0" * 64,
    )
    two = header_bytes(
        1,
        "x",
        "a",
        "p",
        "created",
        "me",
        format_ts(datetime(2026, 1, 1, tzinfo=UTC)),
        "0" * 64,
        "0" * 64,
    )
    assert one != two
    assert json.loads(one)["entity_id"] == 'a","entity_type":"x'
