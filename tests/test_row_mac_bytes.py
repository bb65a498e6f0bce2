"""The row MAC's message, byte for byte: every stored MAC was made with it, so a faster encoder
must write exactly the same bytes or every row in every store reads as tampered (or, worse, a
re-bless hides a real edit). Checked three ways: against MACs recorded from the encoder that
made the stores in use (known answers), against an independent reference built on ``json`` and
``hmac``, and on random values against that reference."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memwarden.audit.chain import ChainKey
from memwarden.audit.rowmac import MEMORY, STATE, MemoryMacFields, RowMacs, StateMacFields

SECRET = bytes(range(32))
MOMENT = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
WHOLE_SECOND = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def reference(table: str, values: tuple[Any, ...]) -> str:
    """The message as documented in rowmac.py, built with the standard library alone:
    numbers as floats, times as UTC ISO text, JSON without spaces or ASCII escaping."""

    def plain(value: Any) -> Any:
        if isinstance(value, bool):
            raise TypeError("not a served type")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str) or value is None:
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()

    message = json.dumps([table, *map(plain, values)], separators=(",", ":"), ensure_ascii=False)
    subkey = hmac.new(SECRET, b"memwarden-row-mac", hashlib.sha256).digest()
    return hmac.new(subkey, message.encode("utf-8"), hashlib.sha256).hexdigest()


def memory(**changes: Any) -> MemoryMacFields:
    fields = MemoryMacFields(
        id=41,
        project="atlas",
        type="preference",
        content='Prefers "dark" roast — café\n\tno sugar \\ ✓ \x01',
        content_hash="ab" * 32,
        confidence=0.7,
        status="active",
        source_chunk_id=None,
        reinforcement_count=2,
        superseded_by=None,
        created_at=WHOLE_SECOND,
        updated_at=MOMENT,
        last_reinforced_at=MOMENT,
    )
    return fields._replace(**changes)


STATE_ROW = StateMacFields("atlas", "schedule", "launch", "March 2027", "agent", MOMENT, MOMENT)

# Recorded from the encoder of sessions 12-17 (the one every stored MAC was made with).
KNOWN = {
    "memory": "a29820146e71e61073c8089d5d7cb61c54420ba43b4670ea78eaa1d20457d861",
    "memory with metadata": "623a46abb1ec14145ba908dd654e4ce19b5cb44fb5dd1dd03fa5d177276cf88a",
    "memory, ints as floats": "34943e98adc9e682743b2aeb6afed0938a4a6085859f362e589d16d10d104a22",
    # The same instants as "memory", given naive, in another zone and as text.
    "memory, other zones": "a29820146e71e61073c8089d5d7cb61c54420ba43b4670ea78eaa1d20457d861",
    "state": "d94ddbfe0553e82718240cc44c7180eb357ffb9df28b8ccce4c0ebb78de418b2",
}


def cases() -> dict[str, tuple[str, Any]]:
    return {
        "memory": (MEMORY, memory()),
        "memory with metadata": (MEMORY, memory(metadata='{"k":"v"}', source_chunk_id=7)),
        "memory, ints as floats": (MEMORY, memory(id=41.0, confidence=1, reinforcement_count=2.0)),
        "memory, other zones": (
            MEMORY,
            memory(
                created_at=WHOLE_SECOND.replace(tzinfo=None),
                updated_at=MOMENT.astimezone(timezone(timedelta(hours=-5))),
                last_reinforced_at=MOMENT.isoformat(),
            ),
        ),
        "state": (STATE, STATE_ROW),
    }


def mac_of(macs: RowMacs, table: str, row: Any) -> str:
    return macs.memory(row) if table == MEMORY else macs.state(row)


def test_the_mac_of_known_rows_is_what_it_always_was() -> None:
    macs = RowMacs(ChainKey(SECRET))
    found = {name: mac_of(macs, table, row) for name, (table, row) in cases().items()}
    assert found == KNOWN


def test_the_mac_matches_a_reference_built_on_json_and_hmac() -> None:
    macs = RowMacs(ChainKey(SECRET))
    for table, row in cases().values():
        values = tuple(row) if table == STATE or row.metadata is not None else tuple(row)[:-1]
        assert mac_of(macs, table, row) == reference(table, values)


UTC_OR_FIXED_OFFSET = st.just(UTC) | st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=UTC_OR_FIXED_OFFSET
) | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30))
served = st.one_of(
    st.none(),
    st.text(),
    st.integers(min_value=-(10**20), max_value=10**20),  # past 1e16, where repr turns to e+
    st.floats(allow_nan=False, allow_infinity=False),
    times,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(served, min_size=1, max_size=14))  # a row has fields
def test_any_served_values_encode_as_the_reference_does(values: list[Any]) -> None:
    macs = RowMacs(ChainKey(SECRET))
    assert macs.mac(MEMORY, tuple(values)) == reference(MEMORY, tuple(values))


@settings(max_examples=200, deadline=None)
@given(st.lists(times, min_size=2, max_size=4), st.integers(min_value=0, max_value=3))
def test_repeated_and_differing_times_in_one_message_encode_each_as_itself(
    moments: list[datetime], repeat: int
) -> None:
    """Times equal as instants but written differently (a naive and an aware one) must not be
    taken for one another by any shortcut for repeated values."""
    values = (*moments, moments[repeat % len(moments)])
    assert RowMacs(ChainKey(SECRET)).mac(MEMORY, values) == reference(MEMORY, values)


def test_ints_either_side_of_where_a_float_repr_turns_exponential() -> None:
    macs = RowMacs(ChainKey(SECRET))
    for edge in (10**15, 10**16 - 1, 10**16, 10**16 + 2, 2**53, 2**53 + 1):
        for value in (edge, -edge):
            assert macs.mac(MEMORY, (value,)) == reference(MEMORY, (value,)), value


class Level(IntEnum):
    LOW = 3


class Moment(datetime):
    pass


def test_subclasses_of_served_types_encode_as_their_base_values() -> None:
    macs = RowMacs(ChainKey(SECRET))
    stamp = Moment(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
    assert macs.mac(MEMORY, (Level.LOW, stamp)) == reference(MEMORY, (3, WHOLE_SECOND))
