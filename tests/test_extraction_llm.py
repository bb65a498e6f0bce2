"""The LLM extractor against a real HTTP server on loopback speaking chat completions.

Good answers become candidates; prose, broken JSON and wrong shapes skip their interaction
(counted, logged, the watermark moves on); an endpoint that is down, slow or failing stops the
run before the interaction, so the next run retries it. Never an exception out of ``extract``.
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from core_support import ledger_count
from extraction_support import (
    candidates_json,
    chat_body,
    chat_server,
    cli_for,
    closed_port_url,
)
from memwarden import Memwarden, Settings
from memwarden.core.extraction.llm import LLMExtractor, endpoint
from memwarden.core.extraction.runner import watermark
from memwarden.errors import InvalidInputError

GOOD = chat_body(candidates_json(("preference", "Prefers tabs over spaces", 0.8)))


def llm(mw: Memwarden, url: str, timeout: float = 5.0, key: str | None = None) -> LLMExtractor:
    settings = mw.settings.model_copy(
        update={
            "llm_url": url,
            "llm_model": "tiny-test-model",
            "llm_timeout_s": timeout,
            "llm_api_key": SecretStr(key) if key is not None else None,
        }
    )
    return LLMExtractor(settings)


def mark(mw: Memwarden) -> int:
    with mw.store.read() as conn:
        return watermark(conn, "atlas", "llm")


def test_a_good_answer_becomes_candidates_with_their_origin(mw: Memwarden) -> None:
    interaction = mw.capture("atlas", "Tabs, always tabs.", "Noted.")
    with chat_server((200, GOOD)) as server:
        extractor = llm(mw, server.url, key="sk-test")
        report = mw.extract(extractor=extractor)
        extractor.close()
    assert (report.extractor, report.version) == ("llm", "1.0/tiny-test-model")
    assert len(report.created) == 1 and report.failures == {} and report.stopped is None
    memory = mw.get(report.created[0])
    assert (memory.type, memory.content, memory.confidence) == (
        "preference",
        "Prefers tabs over spaces",
        0.8,
    )
    assert mw.history(memory.id)[0].actor == "extractor:llm"
    request = server.requests[0]
    assert request["model"] == "tiny-test-model"
    assert request["response_format"] == {"type": "json_object"}
    assert "Tabs, always tabs." in request["messages"][1]["content"]
    assert "identity, preference" in request["messages"][0]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert mark(mw) == interaction.id


def test_a_fenced_answer_and_an_empty_one_are_fine(mw: Memwarden) -> None:
    mw.capture("atlas", "one", "a")
    mw.capture("atlas", "two", "b")
    fenced = chat_body("```json\n" + candidates_json(("project", "Uses Kafka", 0.6)) + "\n```")
    with chat_server((200, fenced), (200, chat_body('{"candidates": []}'))) as server:
        report = mw.extract(extractor=llm(mw, server.url))
    assert len(report.created) == 1 and report.interactions == 2 and report.failures == {}


BAD_ANSWERS = [
    ((200, chat_body("Sure! The user prefers tabs.")), "invalid_json"),
    ((200, chat_body('{"memories": [{"text": "tabs"}]}')), "invalid_schema"),
    ((200, chat_body(candidates_json(("preference", "Tabs", "high")))), "invalid_schema"),
    ((200, '{"object": "error"}'), "invalid_response"),
    ((200, "<html>gateway</html>"), "invalid_response"),
    ((400, '{"error": "bad request"}'), "http_error"),
]


def test_a_bad_answer_skips_its_interaction_and_the_run_goes_on(mw: Memwarden) -> None:
    # Each bad answer is followed by a good one: every other interaction is skipped.
    answers = iter([a for answer, _ in BAD_ANSWERS for a in (answer, (200, GOOD))])
    for i in range(2 * len(BAD_ANSWERS)):
        last = mw.capture("atlas", f"exchange {i}", "ok")
    with chat_server(lambda _request: next(answers)) as server:
        report = mw.extract(extractor=llm(mw, server.url))
    assert report.failures == {
        "invalid_json": 1,
        "invalid_schema": 2,
        "invalid_response": 2,
        "http_error": 1,
    }
    assert report.stopped is None and report.interactions == 2 * len(BAD_ANSWERS)
    assert len(report.created) == 1 and len(report.reinforced) == len(BAD_ANSWERS) - 1
    assert mark(mw) == last.id, "a bad answer is skipped, not retried forever"


def test_candidates_of_unknown_types_are_counted_and_dropped(mw: Memwarden) -> None:
    mw.capture("atlas", "first", "a")
    answer = candidates_json(("opinion", "Tabs rule", 0.9), ("preference", "Likes tabs", 0.9))
    with chat_server((200, chat_body(answer))) as server:
        report = mw.extract(extractor=llm(mw, server.url))
    assert report.invalid_candidates == 1 and len(report.created) == 1


def test_a_failing_endpoint_stops_the_run_and_the_next_run_retries(mw: Memwarden) -> None:
    first = mw.capture("atlas", "first", "a")
    mw.capture("atlas", "second", "b")
    for status in (500, 503, 429):
        with chat_server((status, '{"error": "down for a moment"}')) as server:
            report = mw.extract(extractor=llm(mw, server.url))
        assert report.failures == {"http_error": 1} and report.interactions == 0
        assert report.stopped is not None and f"interaction {first.id}" in report.stopped
        assert mark(mw) == 0
    with chat_server((200, GOOD)) as server:
        again = mw.extract(extractor=llm(mw, server.url))
    assert again.interactions == 2 and again.stopped is None


def test_a_slow_endpoint_times_out_without_hanging_the_run(mw: Memwarden) -> None:
    mw.capture("atlas", "first", "a")
    with chat_server((200, GOOD), delay=1.5) as server:
        report = mw.extract(extractor=llm(mw, server.url, timeout=0.3))
    assert report.failures == {"timeout": 1} and report.stopped is not None
    assert report.interactions == 0 and mark(mw) == 0


def test_an_endpoint_that_is_down_is_reported_not_raised(mw: Memwarden) -> None:
    mw.capture("atlas", "first", "a")
    before = ledger_count(mw)
    report = mw.extract(extractor=llm(mw, closed_port_url()))
    assert report.failures == {"unreachable": 1} and report.stopped is not None
    assert report.stopped.startswith("unreachable at interaction 1")
    assert ledger_count(mw) == before and mark(mw) == 0


def test_the_llm_extractor_needs_its_settings() -> None:
    with pytest.raises(InvalidInputError, match="MEMWARDEN_LLM_URL and MEMWARDEN_LLM_MODEL"):
        LLMExtractor(Settings(llm_url="http://127.0.0.1:1/v1"))
    assert endpoint("http://h/v1/") == "http://h/v1/chat/completions"
    assert endpoint("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_cli_extract_with_the_llm_down_exits_1_with_one_line(settings: Settings) -> None:
    cli = cli_for(settings)
    cli.run("capture", "-p", "atlas", "--prompt", "I prefer tabs.", "--response", "ok")
    env = {"MEMWARDEN_LLM_URL": closed_port_url(), "MEMWARDEN_LLM_MODEL": "m"}
    result = cli.run("extract", "--extractor", "llm", code=1, env=env)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "warning: 1 interaction(s) failed extraction: unreachable",
        result.stderr.strip().splitlines()[-1],
    ]
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: extraction stopped early (unreachable at interaction 1")
    )
    assert result.stdout.startswith("extracted 0 interaction(s) with llm 1.0/m")
    with chat_server((200, GOOD)) as server:
        env["MEMWARDEN_LLM_URL"] = server.url
        data = json.loads(cli.run("extract", "--extractor", "llm", "--json", env=env).stdout)
    assert data["interactions"] == 1 and data["created"] == 1
