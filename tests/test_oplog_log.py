"""The operation log, wired into the facade: opt-in per action, the transport known, the
duration and the error type recorded, raw text never stored unless asked. Both engines."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import structlog

from memwarden import Memwarden, Settings
from memwarden.audit.actor import acting_as
from memwarden.audit.oplog import TRANSPORTS, OperationEntry, via
from memwarden.audit.oplog.timing import UNTIMED
from memwarden.errors import InvalidInputError, NotFoundError
from oplog_support import CONTENT, EXERCISED, MARKERS, QUERY, exercise, open_logged, rows

# Facade methods that are not domain operations (or carry secrets, like API key tokens).
NOT_LOGGED = {
    "init",
    "close",
    "create_key",
    "list_keys",
    "revoke_key",
    "authenticate",
    "keys_configured",
    "keys_unbound_to_token",
    "set_key_scopes",
    # Dashboard session bookkeeping and the vector index's plumbing (status, waits, sweeps).
    "end_session",
    "session_ended",
    "embedding_status",
    "recall_health",
    "wait_for_embeddings",
    "start_index_sweep",
    # Read models of the dashboard and the CLI's status pages, previews shown before an
    # operation, and the nightly pipeline's and harness's own bookkeeping (the nightly run is
    # recorded in its own tables): never operations of the log.
    "alert_dead_letters",
    "alert_feed",
    "alert_webhooks",
    "api_key",
    "begin_nightly_run",
    "checkpoint_status",
    "checkpoint_verifier_key",
    "dashboard",
    "erase_preview",
    "erase_status",
    "finish_nightly_run",
    "finish_scrubs",
    "harness_fixtures",
    "harness_runs",
    "integrity_runs",
    "last_alerts",
    "latest_integrity",
    "ledger_check",
    "memory_counts",
    "memory_story",
    "mutations_per_day",
    "nightly_lock",
    "nightly_run",
    "nightly_runs",
    "operations",
    "recent_mutations",
    "record_nightly_step",
    "revert_preview",
    "run_harness",
    "sign_receipt",
}


def facade_members() -> dict[str, object]:
    """Every member of the facade, its groups' (core/facade/) included: the class itself only
    opens and closes, so its own ``vars`` would find no operation at all."""
    members: dict[str, object] = {}
    for klass in reversed(Memwarden.__mro__):
        if klass.__module__.startswith("memwarden."):
            members.update(vars(klass))
    return members


def logged_methods() -> dict[str, str]:
    """Each facade method in the operation log, with the action it is logged as."""
    return {
        name: member.oplog_action
        for name, member in facade_members().items()
        if inspect.isfunction(member) and hasattr(member, "oplog_action")
    }


def test_every_public_facade_method_is_a_logged_operation() -> None:
    public = {
        name
        for name, member in facade_members().items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, classmethod))
    }
    assert len(public) > 50, "the facade's operations were not found"
    unlogged = public - set(logged_methods()) - NOT_LOGGED
    assert not unlogged, (
        f"facade methods outside the operation log: {sorted(unlogged)} (mark them @logged)"
    )


def test_an_empty_allowlist_logs_nothing_and_starts_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    mw = open_logged(settings)  # the default: MEMWARDEN_OPLOG_ACTIONS empty
    try:
        exercise(mw, tmp_path)
        with pytest.raises(NotFoundError):
            mw.promote(999_999)
        assert mw.oplog.timed("recall") is UNTIMED
        assert not mw.oplog.enabled
        assert mw.oplog._thread is None  # no writer thread was ever started
        assert rows(mw) == []
        assert mw.oplog.counters() == {"queued": 0, "written": 0, "dropped": 0, "failed": 0}
    finally:
        mw.close()


def test_star_logs_every_operation_with_its_timing(settings: Settings, tmp_path: Path) -> None:
    mw = open_logged(settings, actions="*")
    try:
        exercise(mw, tmp_path)
        stored = rows(mw)
    finally:
        mw.close()
    assert {row.action for row in stored} == EXERCISED
    assert EXERCISED <= set(logged_methods().values())
    # Nested calls (diff, as_of and blame read the history) are part of their operation.
    assert sum(row.action == "history" for row in stored) == 1
    for row in stored:
        assert row.transport == "library"
        assert row.actor == "library"
        assert row.error is None
        assert row.started_at <= row.ended_at
        assert 0 <= row.duration_ms < 60_000
        assert row.duration_ms == pytest.approx(
            (row.ended_at - row.started_at).total_seconds() * 1000, abs=0.01
        )
    by_action = {row.action: row for row in stored}
    added = [row.project for row in stored if row.action == "add_project"]
    assert added == ["atlas", "scratch"]  # from the name argument
    assert by_action["promote"].project == "atlas"  # from the result
    recall = json.loads(by_action["recall"].request)
    assert recall == {
        "query": {"chars": len(QUERY)},
        "project": "atlas",
        "types": None,
        "k": 10,
        "include_chunks": True,
        "mode": None,
        "include_superseded": False,
        "min_tier": None,
        "where": None,
        "rank_by": None,
        "half_life_days": None,
    }
    response = json.loads(by_action["recall"].response)
    assert response["count"] >= 1 and len(response["ids"]) == response["count"]


def test_an_allowlist_logs_only_its_actions(settings: Settings, tmp_path: Path) -> None:
    mw = open_logged(settings, actions=" Recall , context,,")
    try:
        exercise(mw, tmp_path)
        assert {row.action for row in rows(mw)} == {"recall", "context"}
    finally:
        mw.close()


def test_an_unknown_action_is_warned_about_once_at_start_and_kept(settings: Settings) -> None:
    with structlog.testing.capture_logs() as logs:
        mw = open_logged(settings, actions="recall, recal,CONTXT")
    try:
        warned = [event for event in logs if event["event"] == "oplog_unknown_actions"]
        assert len(warned) == 1, warned
        assert warned[0]["log_level"] == "warning"
        assert warned[0]["unknown"] == ["contxt", "recal"]
        assert set(logged_methods().values()) <= set(warned[0]["known"])
        assert "recall" in warned[0]["known"] and warned[0]["known"] == sorted(warned[0]["known"])
        assert mw.oplog.actions == {"recall", "recal", "contxt"}  # kept: harmless
        mw.add_project("atlas")
        mw.recall(QUERY, "atlas")
        assert [row.action for row in rows(mw)] == ["recall"]
    finally:
        mw.close()
    for fine in ("recall,capture_import", "*", ""):
        with structlog.testing.capture_logs() as logs:
            open_logged(settings, actions=fine).close()
        assert not [event for event in logs if event["event"] == "oplog_unknown_actions"], fine


def test_the_transport_and_actor_are_recorded(settings: Settings) -> None:
    mw = open_logged(settings, actions="recall")
    try:
        mw.add_project("atlas")
        for transport in TRANSPORTS:
            with via(transport), acting_as(f"agent-{transport}"):
                mw.recall(QUERY, "atlas")
        mw.recall(QUERY)
        stored = rows(mw)
    finally:
        mw.close()
    assert [(r.transport, r.actor) for r in stored] == [
        *[(t, f"agent-{t}") for t in TRANSPORTS],
        ("library", "library"),
    ]
    assert stored[-1].project is None  # no project asked, none found in an empty result
    with pytest.raises(InvalidInputError, match="unknown transport"), via("carrier-pigeon"):
        pass


def test_a_failing_operation_records_its_error_type_and_raises_untouched(
    settings: Settings,
) -> None:
    mw = open_logged(settings, actions="*")
    try:
        with pytest.raises(NotFoundError) as raised:
            mw.promote(424_242)
        assert raised.value.__traceback__ is not None
        boom = KeyError("deliberate")
        with (
            pytest.raises(KeyError) as caught,
            mw.oplog.timed("custom", "system", "atlas", {"n": 1}) as op,
        ):
            op.metadata["step"] = "before the failure"
            raise boom
        assert caught.value is boom  # the very same exception object
        with mw.oplog.timed("custom", "harness") as op:
            op.response = {"ok": True}
        stored = rows(mw)
    finally:
        mw.close()
    failed, custom_failed, custom_ok = stored
    assert (failed.action, failed.error, failed.project) == ("promote", "NotFoundError", None)
    assert json.loads(failed.request) == {"memory_id": 424_242, "note": None}
    assert failed.response is None
    assert (custom_failed.transport, custom_failed.project, custom_failed.error) == (
        "system",
        "atlas",
        "KeyError",
    )
    assert json.loads(custom_failed.metadata) == {"step": {"chars": len("before the failure")}}
    assert (custom_ok.transport, custom_ok.error, json.loads(custom_ok.response)) == (
        "harness",
        None,
        {"ok": True},
    )


def stored_text(mw: Memwarden) -> str:
    return "\n".join(
        " ".join(str(value) for value in row._mapping.values() if value is not None)
        for row in rows(mw)
    )


def test_raw_off_never_stores_memory_text(settings: Settings, tmp_path: Path) -> None:
    mw = open_logged(settings, actions="*")
    try:
        exercise(mw, tmp_path)
        with pytest.raises(NotFoundError):
            mw.remember("missing-project-" * 20, CONTENT)
        text = stored_text(mw)
    finally:
        mw.close()
    assert len(text) > 1000
    leaked = [marker for marker in MARKERS if marker in text]
    assert not leaked, f"raw text in the operation log: {leaked}"


def test_raw_on_stores_the_text(settings: Settings, tmp_path: Path) -> None:
    mw = open_logged(settings, actions="*", raw=True)
    try:
        exercise(mw, tmp_path)
        text = stored_text(mw)
    finally:
        mw.close()
    assert all(marker in text for marker in MARKERS)


def test_logged_values_of_every_awkward_type_are_stored(settings: Settings) -> None:
    from datetime import UTC, date, datetime
    from decimal import Decimal
    from uuid import UUID

    mw = open_logged(settings, actions="*", raw=True)
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    request = {
        "when": moment,
        "day": date(2026, 5, 1),
        "uid": UUID(int=7),
        "blob": b"\x00\x01",
        "tags": {"b", "a"},
        "amount": Decimal("1.10"),
        "path": Path("/tmp/x"),
        "error": ValueError("nope"),
        "nan": float("nan"),
        "other": object(),
        "text": "nul \x00 and lone \ud800",
        "big": "é" * 20_000,
    }
    try:
        mw.oplog.log(
            OperationEntry(
                "awkward",
                "bench",
                "pr\x00oject",
                moment,
                moment,
                request,
                None,
                {"k": (1, 2)},
                actor="a" * 500,
            )
        )
        (row,) = rows(mw)
    finally:
        mw.close()
    assert (row.project, len(row.actor)) == ("project", 200)  # no NUL; clipped to the column
    stored = json.loads(row.request)
    assert stored["$truncated"] is True  # 40 KB of text: over the row limit
    head = stored["head"]
    for expected in (
        '"when":"2026-05-01T12:00:00+00:00"',
        '"day":"2026-05-01"',
        '"uid":"00000000-0000-0000-0000-000000000007"',
        '"blob":{"$bytes":"AAE=","len":2}',
        '"tags":["a","b"]',
        '"amount":"1.10"',
        '"path":"/tmp/x"',
        '"error":{"$exception":"ValueError","message":"nope"}',
        '"nan":"nan"',
        '"other":{"$repr":"<object object at',
    ):
        assert expected in head
    assert json.loads(row.metadata) == {"k": [1, 2]}


def _sample(self: object, a: int, b: int = 2, *rest: int, c: int, d: int = 4, **extra: int) -> None:
    return None


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1,), {"c": 3}),
        ((1, 5, 6, 7), {"c": 3, "d": 8}),
        ((), {"a": 1, "c": 3, "zz": 9}),
        ((1, 2), {"c": 3, "extra": 10}),
    ],
)
def test_the_request_is_the_calls_arguments_by_name(
    args: tuple[int, ...], kwargs: dict[str, int]
) -> None:
    from memwarden.audit.oplog.facade import _Binder

    signature = inspect.signature(_sample)
    expected = signature.bind(None, *args, **kwargs)
    expected.apply_defaults()
    wanted = dict(expected.arguments)
    del wanted["self"]
    assert _Binder(signature).bind(args, kwargs) == wanted
