"""The retrieval harness: fixtures files, passing and failing runs, their records, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memwarden import Memwarden, Settings
from memwarden.core.facade.harness import HarnessNotConfiguredError
from memwarden.observability.harness import fixtures
from memwarden.observability.harness.fixtures import FixturesError
from nightly_support import cli_for, load_sample, write_fixtures


# -- the fixtures file -------------------------------------------------------------------------
def test_yaml_and_json_read_the_same_cases() -> None:
    yaml_text = """
k: 3
projects:
  atlas:
    - query: launch window
      expect_text: June
    - name: by id
      query: engine
      expect_ids: [4, 7]
      k: 10
      types: [knowledge]
      chunks: false
"""
    as_json = json.dumps(
        {
            "k": 3,
            "projects": {
                "atlas": [
                    {"query": "launch window", "expect_text": "June"},
                    {
                        "name": "by id",
                        "query": "engine",
                        "expect_ids": [4, 7],
                        "k": 10,
                        "types": ["knowledge"],
                        "chunks": False,
                    },
                ]
            },
        }
    )
    from_yaml = fixtures.parse(yaml_text, "f.yaml", suffix=".yaml").cases
    from_json = fixtures.parse(as_json, "f.json", suffix=".json").cases
    assert from_yaml == from_json
    first, second = from_yaml
    assert (first.project, first.k, first.expect_text, first.chunks) == (
        "atlas",
        3,
        ("June",),
        True,
    )
    assert (second.k, second.expect_ids, second.types, second.chunks) == (
        10,
        (4, 7),
        ("knowledge",),
        False,
    )
    # no suffix: JSON first, then YAML
    assert fixtures.parse(yaml_text, "f").cases == from_yaml


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ('{"projects": {', ".json", "not valid JSON (line 1, column 15"),
        ("projects:\n  atlas: [\n", ".yaml", "not valid YAML (line 3"),
        ("", ".yaml", "must hold a mapping"),
        ("- query: x", ".yaml", "must hold a mapping"),
        (
            "version: 2\nprojects: {a: [{query: q, expect_text: t}]}",
            ".yaml",
            "version: only version 1",
        ),
        ("projects: {}", ".yaml", "projects: a mapping of project name"),
        ("projects: {atlas: []}", ".yaml", "projects.atlas: a non-empty list"),
        ("projects: {atlas: [query]}", ".yaml", "projects.atlas[0]: a case is a mapping"),
        ("projects: {atlas: [{expect_text: x}]}", ".yaml", "projects.atlas[0].query: a non-empty"),
        ("projects: {atlas: [{query: q}]}", ".yaml", "projects.atlas[0]: say what recall must"),
        (
            "projects: {atlas: [{query: q, expect_text: x, k: 0}]}",
            ".yaml",
            "projects.atlas[0].k: k must be a whole number from 1 to 100",
        ),
        ("k: true\nprojects: {atlas: [{query: q, expect_text: x}]}", ".yaml", "k: k must be"),
        (
            "projects: {atlas: [{query: q, expect_ids: [1, -2]}]}",
            ".yaml",
            "projects.atlas[0].expect_ids: a list of memory ids",
        ),
        (
            "projects: {atlas: [{query: q, expect_text: ['']}]}",
            ".yaml",
            "projects.atlas[0].expect_text",
        ),
        (
            "projects: {atlas: [{query: q, expect: x}]}",
            ".yaml",
            "projects.atlas[0]: unknown key 'expect'",
        ),
        ("projets: {}", ".yaml", "top level: unknown key 'projets'"),
        (
            "projects: {atlas: [{query: q, expect_text: x, chunks: 'no'}]}",
            ".yaml",
            "projects.atlas[0].chunks",
        ),
        ("projects: {atlas: [{query: q, expect_text: x, types: []}]}", ".yaml", ".types"),
    ],
)
def test_a_malformed_file_says_what_and_where(text: str, suffix: str, message: str) -> None:
    with pytest.raises(FixturesError) as caught:
        fixtures.parse(text, "cases" + suffix, suffix=suffix)
    assert message in str(caught.value)
    assert str(caught.value).startswith("cases" + suffix)


def test_an_unreadable_file_is_a_fixtures_error(tmp_path: Path) -> None:
    with pytest.raises(FixturesError, match="does not exist"):
        fixtures.load(tmp_path / "missing.yaml")
    with pytest.raises(FixturesError, match="is a directory"):
        fixtures.load(tmp_path)
    binary = tmp_path / "cases.json"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(FixturesError, match="not UTF-8"):
        fixtures.load(binary)


# -- runs on a database --------------------------------------------------------------------
def test_the_bundled_fixtures_pass_on_the_sample_data(settings: Settings) -> None:
    cli = load_sample(settings)
    result = cli.json("harness", "run")
    assert result["total"] == 11
    assert result["passed"] == 11 and result["pass_rate"] == 1.0
    assert result["failures"] == []
    assert result["fixtures"] == "bundled:atlas-rocket.harness.yaml"
    assert result["transport"] == "cli"
    with Memwarden(settings) as mw:
        [run] = mw.harness_runs()
        assert (run.id, run.total, run.passed) == (result["id"], 11, 11)


def test_a_failing_fixture_records_each_failing_case(settings: Settings, tmp_path: Path) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        kept = mw.remember("atlas", "The launch window opens on 9 June.", status="active").memory
        path = write_fixtures(
            tmp_path / "cases.json",
            {
                "projects": {
                    "atlas": [
                        {"name": "window", "query": "launch window", "expect_ids": [kept.id]},
                        {"query": "launch window", "expect_text": ["opens on 9 June", "10 July"]},
                    ],
                    "nowhere": [{"query": "anything", "expect_text": "x"}],
                }
            },
        )
        run = mw.run_harness(path)
        assert (run.total, run.passed, run.failed) == (3, 1, 2)
        assert run.pass_rate == pytest.approx(1 / 3)
        wrong_text, unknown_project = run.failures
        assert wrong_text["query"] == "launch window"
        assert wrong_text["expected"] == {"ids": [], "text": ["opens on 9 June", "10 July"]}
        assert wrong_text["missing"] == {"ids": [], "text": ["10 July"]}
        assert wrong_text["got"] == [
            {"kind": "memory", "id": kept.id, "preview": "The launch window opens on 9 June."}
        ]
        assert unknown_project["project"] == "nowhere"
        assert "nowhere" in unknown_project["error"] and unknown_project["got"] == []
        # recorded as returned, newest first
        [again] = mw.harness_runs(limit=5)
        assert again.to_dict() == run.to_dict()


def test_cli_prints_each_failing_case_and_exits_1_below_the_floor(
    settings: Settings, tmp_path: Path
) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Static fire SF-03 is planned for April.", status="active")
    path = write_fixtures(
        tmp_path / "cases.json",
        {"projects": {"atlas": [{"query": "static fire", "expect_text": "September", "k": 2}]}},
    )
    result = cli_for(settings).run("harness", "run", "--fixtures", str(path), code=1)
    assert "0/1 passed (0.0%)" in result.stdout
    assert "FAIL atlas: 'static fire' (top 2)" in result.stdout
    assert "missing text: 'September'" in result.stdout
    assert "got 1. memory" in result.stdout and "Static fire SF-03" in result.stdout
    assert "pass rate 0.0% is below 85%" in result.stderr
    # the same floor, configured lower, passes
    cli_for(settings, MEMWARDEN_HARNESS_MIN_PASS_RATE="0").run(
        "harness", "run", "--fixtures", str(path)
    )


def test_cli_rejects_a_malformed_fixtures_file(settings: Settings, tmp_path: Path) -> None:
    cli = cli_for(settings)
    cli.run("init")
    bad = tmp_path / "cases.yaml"
    bad.write_text("projects:\n  atlas:\n    - query: q\n      k: 500\n      expect_text: x\n")
    line = cli.error("harness", "run", "--fixtures", str(bad))
    assert f"{bad}: projects.atlas[0].k: k must be a whole number from 1 to 100" in line
    line = cli.error("harness", "run", "--fixtures", str(tmp_path / "nope.json"))
    assert "does not exist" in line
    with Memwarden(settings) as mw:
        assert mw.harness_runs() == []  # nothing recorded for a file that could not be read


def test_the_setting_points_elsewhere_and_without_fixtures_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Tabs over spaces.", type="preference", status="active")
        with pytest.raises(HarnessNotConfiguredError, match="memwarden demo"):
            mw.run_harness()  # the bundled fixtures are for atlas-rocket, which is not here
    path = write_fixtures(
        tmp_path / "mine.json",
        {"projects": {"atlas": [{"query": "tabs", "expect_text": "tabs over spaces"}]}},
    )
    configured = settings.model_copy(update={"harness_fixtures": path})
    with Memwarden(configured) as mw:
        run = mw.run_harness()
        assert (run.fixtures, run.passed, run.total) == (str(path), 1, 1)
    line = cli_for(settings).error("harness", "run")
    assert "no harness fixtures for this database" in line


def test_history_lists_runs_newest_first(settings: Settings, tmp_path: Path) -> None:
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        mw.remember("atlas", "Tabs over spaces.", status="active")
    path = write_fixtures(
        tmp_path / "cases.json",
        {"projects": {"atlas": [{"query": "tabs", "expect_text": "tabs"}]}},
    )
    cli = cli_for(settings)
    assert cli.run("harness", "history").stdout.startswith("no harness runs yet")
    cli.run("harness", "run", "-f", str(path))
    cli.run("harness", "run", "-f", str(path))
    runs = cli.json("harness", "history")
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
    assert len(runs) == 2 and all(r["pass_rate"] == 1.0 for r in runs)
    text = cli.run("harness", "history", "--limit", "1").stdout
    assert "1/1" in text and "100.0%" in text and str(runs[0]["id"]) in text
