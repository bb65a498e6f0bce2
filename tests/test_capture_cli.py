"""`memwarden capture`: one exchange, a JSON-lines file, standard input, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from extraction_support import cli_for, run_with_input
from memwarden import Settings


def _line(**fields: str) -> str:
    return json.dumps(fields)


def test_capture_one_and_show_it_as_json(settings: Settings) -> None:
    cli = cli_for(settings)
    out = cli.run("capture", "-p", "atlas", "--prompt", "I prefer tabs.", "--response", "ok")
    assert out.stdout.strip() == "captured interaction 1 in atlas"
    data = cli.json("capture", "-p", "atlas", "--prompt", "q", "--response", "a", "--client", "cc")
    assert (data["id"], data["client"], data["prompt"]) == (2, "cc", "q")


def test_bulk_file_reports_bad_lines_keeps_good_ones_and_exits_1(
    settings: Settings, tmp_path: Path
) -> None:
    cli = cli_for(settings)
    source = tmp_path / "log.jsonl"
    source.write_text(
        "\n".join(
            [
                _line(project="atlas", prompt="p1", response="r1"),
                "{broken",
                _line(project="ghost", prompt="p", response="r"),
                _line(prompt="p2", response="r2"),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = cli.run("capture", "--jsonl", str(source), "-p", "atlas", code=1)
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith("warning: line 2: invalid JSON")
    assert errors[1] == "warning: line 3: unknown project 'ghost': create it first"
    assert errors[-1] == "error: 2 bad line(s) skipped; the 2 good ones were kept"
    assert result.stdout.strip() == "captured 2 interaction(s) (ids 1..2)"
    data = json.loads(
        cli.run("capture", "--jsonl", str(source), "-p", "atlas", "--json", code=1).stdout
    )
    assert data["captured"] == 2 and [e["line"] for e in data["errors"]] == [2, 3]


def test_bulk_from_stdin(settings: Settings) -> None:
    cli = cli_for(settings)
    lines = "".join(_line(project="atlas", prompt=f"p{i}", response="r") + "\n" for i in range(3))
    result = run_with_input(cli, lines.encode(), "capture", "--jsonl", "-")
    assert result.stdout.strip() == "captured 3 interaction(s) (ids 1..3)"
    bad = run_with_input(cli, b"\xff\xfe\n" + lines.encode(), "capture", "--jsonl", "-", code=1)
    assert "warning: line 1: not valid UTF-8" in bad.stderr


def test_capture_usage_and_domain_errors(settings: Settings, tmp_path: Path) -> None:
    cli = cli_for(settings)
    assert "not both" in cli.error("capture", "--jsonl", "-", "--prompt", "x", code=2)
    assert "give --project, --prompt and --response" in cli.error(
        "capture", "--prompt", "x", code=2
    )
    assert cli.error("capture", "-p", "ghost", "--prompt", "q", "--response", "a") == (
        "error: unknown project 'ghost': create it first with `memwarden project add ghost`"
    )
    assert cli.error("capture", "-p", "atlas", "--prompt", " ", "--response", "a") == (
        "error: the prompt is empty"
    )
    missing = cli.error("capture", "--jsonl", str(tmp_path / "missing.jsonl"))
    assert missing.startswith("error: No such file or directory")
    huge = "x" * (300 * 1024)
    assert "MEMWARDEN_MAX_INTERACTION_BYTES" in cli.error(
        "capture", "-p", "atlas", "--prompt", huge, "--response", "a"
    )
