"""`memwarden triage`: list, show, promote, reject, and the interactive loop (scripted keys)."""

from __future__ import annotations

import io
from collections.abc import Iterator

from rich.console import Console

from extraction_support import cli_for, run_with_input
from memwarden import Memwarden, Settings
from memwarden.audit.actor import HUMAN_TRIAGE
from memwarden.cli.triage_session import SessionSummary, run_session

PROMPTS = (
    "I prefer tabs over spaces.",
    "We decided to use Kafka for events.",
    "My name is Ada.",
    "Lesson learned: never deploy on Fridays.",
)


def seeded(mw: Memwarden) -> list[int]:
    for prompt in PROMPTS:
        mw.capture("atlas", prompt, "Noted.", "claude-code")
    return mw.extract().created  # oldest first; the queue shows newest first


class Script:
    """Keys and text answers fed to the loop in order; the end of the script is the end of input."""

    def __init__(self, keys: str, texts: list[str | None] | None = None) -> None:
        self.keys: Iterator[str] = iter(keys)
        self.texts = list(texts or [])
        self.prompts: list[tuple[str, str]] = []

    def key(self) -> str:
        return next(self.keys, "")

    def text(self, prompt: str, default: str) -> str | None:
        self.prompts.append((prompt, default))
        return self.texts.pop(0) if self.texts else None


def session(mw: Memwarden, script: Script, **options: str) -> tuple[str, SessionSummary]:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    summary = run_session(mw, console, script.key, script.text, **options)  # type: ignore[arg-type]
    return out.getvalue(), summary


def test_interactive_keys_promote_reject_edit_skip_and_quit(mw: Memwarden) -> None:
    tabs, kafka, ada, lesson = seeded(mw)
    # newest first: lesson (? for help, then p), ada (r + reason), kafka (e + text), tabs (s)
    script = Script("?pres", ["too vague", "Events go through Kafka (decided in March)."])
    output, summary = session(mw, script)
    assert summary.promoted == [lesson, kafka] and summary.edited == [kafka]
    assert summary.rejected == [ada] and summary.skipped == [tabs]
    assert mw.get(lesson).status == "active" and mw.get(ada).status == "rejected"
    assert mw.get(kafka).content == "Events go through Kafka (decided in March)."
    assert mw.history(ada)[-1].note == "too vague" and mw.history(ada)[-1].actor == HUMAN_TRIAGE
    assert mw.get(tabs).status == "candidate"
    assert script.prompts[1] == ("statement", "We decided to use Kafka for events.")
    assert "source: interaction 4 from claude-code" in output
    assert "user: Lesson learned: never deploy on Fridays." in output
    assert "[p]romote  [r]eject  [e]dit then promote  [s]kip  [q]uit" in output
    assert output.strip().endswith("triage: 2 promoted (1 edited), 1 rejected, 1 skipped")


def test_quit_and_the_end_of_input_stop_without_deciding(mw: Memwarden) -> None:
    ids = seeded(mw)
    _, summary = session(mw, Script("q"))
    assert summary.quit and not summary.promoted
    _, summary = session(mw, Script("s"))  # skips one, then the input ends
    assert summary.skipped == [ids[-1]] and summary.quit
    _, summary = session(mw, Script("e"))  # the text prompt meets the end of input
    assert summary.edited == [] and summary.quit
    assert mw.triage_size() == 4


def test_the_session_shows_similar_active_memories_and_survives_errors(mw: Memwarden) -> None:
    mw.remember("atlas", "I prefer tabs over spaces in Go.", "preference", status="active")
    mw.capture("atlas", "I prefer tabs over spaces in Python.", "ok")
    mw.capture("atlas", "I prefer dark mode.", "ok")
    dark_first, _ = mw.extract().created[::-1]
    script = Script("ep", ["I prefer tabs over spaces in Go."])  # edit into a duplicate
    output, summary = session(mw, script)
    assert "similar active memories" in output and "I prefer tabs over spaces in Go." in output
    assert summary.errors == 1 and "error: memory" in output
    assert mw.get(dark_first).status == "candidate"


def test_session_filters_by_project_and_type(mw: Memwarden) -> None:
    tabs, kafka, ada, lesson = seeded(mw)
    _, summary = session(mw, Script("p"), type="identity")
    assert summary.promoted == [ada]


def test_cli_triage_list_show_promote_reject(settings: Settings) -> None:
    cli = cli_for(settings)
    for prompt in PROMPTS:
        cli.run("capture", "-p", "atlas", "--prompt", prompt, "--response", "Noted.")
    cli.run("extract")
    listing = cli.run("triage", "list").stdout
    assert "4 of 4 candidate(s)" in listing and "We decided to use Kafka" in listing
    data = cli.json("triage", "list", "--limit", "2")
    assert data["total"] == 4 and [i["id"] for i in data["items"]] == [4, 3]
    assert data["items"][0]["origins"][0]["interaction_id"] == 4
    shown = cli.run("triage", "show", "2").stdout
    assert "candidate 2 · project" in shown and "source: interaction 2" in shown
    assert cli.json("triage", "show", "2")["interaction"]["prompt"] == PROMPTS[1]
    assert cli.run("triage", "promote", "1", "2", "--note", "ok").stdout.strip() == (
        "promoted 2 candidate(s): 1, 2"
    )
    assert cli.json("triage", "reject", "3")[0]["status"] == "rejected"
    assert cli.error("triage", "promote", "3", "4") == (
        "error: cannot promote memory 3: it is rejected (only a candidate memory can be promoted)"
    )
    assert cli.error("triage", "show", "99") == "error: memory 99 not found"
    assert "Missing argument" in cli.error("triage", "promote", code=2)


def test_cli_interactive_triage_reads_keys_from_stdin(settings: Settings) -> None:
    cli = cli_for(settings)
    cli.run("capture", "-p", "atlas", "--prompt", PROMPTS[0], "--response", "ok")
    cli.run("capture", "-p", "atlas", "--prompt", PROMPTS[1], "--response", "ok")
    cli.run("extract")
    result = run_with_input(cli, b"r\nnot now\np\n", "triage")
    assert "triage: 1 promoted (0 edited), 1 rejected, 0 skipped" in result.stdout
    history = cli.json("audit", "history", "1")
    assert [(r["action"], r["actor"]) for r in history][-1] == ("promoted", HUMAN_TRIAGE)
