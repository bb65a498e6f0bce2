"""The README's quick start and tour run, in order, against a fresh home, and print what the
README shows.

Only the ``console`` blocks between ``<!-- readme-test: begin NAME -->`` and
``<!-- readme-test: end -->`` are run (other sections are free to show anything). In a block,
``$ memwarden …`` is a command (``\\`` continues it; ``# …`` is a comment), ``$ export NAME=value``
sets the environment, and the lines up to the next ``$`` are what the command prints (stderr,
then stdout). A shown ``error: …`` means the command must fail with exit 1; otherwise it must
succeed. Compared exactly, line by line, except what differs from run to run: timestamps, chain
tags and hashes, elapsed times, the home folder (shown as ``~/.memwarden``) and the checkout
(``~/memwarden``).

``MEMWARDEN_README_REWRITE=1`` writes what the commands print now into the README's blocks
(for a maintainer after a deliberate change; read the diff before committing it).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import _command

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTIONS = ("quick-start", "tour")
SHOWN_HOME = "~/.memwarden"
SHOWN_CHECKOUT = "~/memwarden"
BEGIN = re.compile(r"<!-- readme-test: begin ([\w-]+) -->")
END = "<!-- readme-test: end -->"
VARYING = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<date>"),  # a bare date (provenance: "replaced #1 (…)")
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hex>"),
    (re.compile(r"\b[0-9a-f]{20,63}…"), "<hex>…"),
    (re.compile(r"in [\d.]+ s \([\d,]+ rows/s\)"), "in <elapsed>"),
    # A fresh home's keys: the checkpoint verifier key (issue 20) and the ledger key's
    # fingerprint (issue 14).
    (re.compile(r"\b(\S+)/[0-9a-f]{32}\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+"), r"\1/<verifier key>"),
    (re.compile(r"\bkey: [0-9a-f]{16}\b"), "key: <fingerprint>"),
]


@dataclass
class Step:
    line: int  # in README.md, for messages
    command: str
    shown: list[str] = field(default_factory=list)


@dataclass
class Block:
    section: str
    start: int  # index of the first line inside the fence
    end: int  # index of the closing fence
    steps: list[Step] = field(default_factory=list)


def blocks(lines: list[str]) -> list[Block]:
    found: list[Block] = []
    section: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        begin = BEGIN.search(line)
        if begin:
            section = begin.group(1)
        elif END in line:
            section = None
        elif section is not None and line.strip() == "```console":
            block = Block(section, index + 1, index + 1)
            index += 1
            while lines[index].strip() != "```":
                text = lines[index]
                if text.startswith("$ "):
                    command = text[2:]
                    first = index
                    while command.endswith("\\"):
                        index += 1
                        command = command[:-1] + " " + lines[index].strip()
                    block.steps.append(Step(first + 1, command))
                else:
                    assert block.steps, f"README.md:{index + 1}: output before any command"
                    block.steps[-1].shown.append(text)
                index += 1
            block.end = index
            found.append(block)
        index += 1
    return found


def normalise(text: str, home: Path) -> list[str]:
    text = text.replace(str(home), SHOWN_HOME).replace(str(ROOT), SHOWN_CHECKOUT)
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return [line.rstrip() for line in text.rstrip("\n").split("\n")] if text.strip() else []


class Shell:
    """Runs the README's commands in-process, in the checkout, on one fresh home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env: dict[str, str | None] = {
            **{name: None for name in os.environ if name.startswith("MEMWARDEN_")},
            # The README's user is alice: her changes are recorded as cli:alice.
            "USER": "alice",
            "LOGNAME": "alice",
            "COLUMNS": "130",
        }
        self.runner = CliRunner()

    def run(self, step: Step) -> tuple[int, str]:
        words = shlex.split(step.command, comments=True)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value.replace(SHOWN_HOME, str(self.home))
            return 0, ""
        assert words[0] == "memwarden", f"README.md:{step.line}: only memwarden runs here"
        with self.runner.isolation(env=self.env) as (out, err, _mixed):
            try:
                _command().main(args=words[1:], prog_name="memwarden")
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            return code, err.getvalue().decode() + out.getvalue().decode()


def test_the_quick_start_and_the_tour_print_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    lines = README.read_text(encoding="utf-8").split("\n")
    found = blocks(lines)
    assert {b.section for b in found} == set(SECTIONS), "the README lost a tested section"
    assert sum(len(b.steps) for b in found) >= 20
    shell = Shell(tmp_path / "home")
    rewrite = os.environ.get("MEMWARDEN_README_REWRITE") == "1"
    failures: list[str] = []
    printed: list[list[list[str]]] = []
    for block in found:
        printed.append([])
        for step in block.steps:
            code, output = shell.run(step)
            got = normalise(output, shell.home)
            raw = output.replace(str(shell.home), SHOWN_HOME).replace(str(ROOT), SHOWN_CHECKOUT)
            printed[-1].append(
                [line.rstrip() for line in raw.rstrip("\n").split("\n")] if raw.strip() else []
            )
            want = normalise("\n".join(step.shown), shell.home)
            expected_code = 1 if want and want[0].startswith("error: ") else 0
            if code != expected_code:
                failures.append(
                    f"README.md:{step.line}: `{step.command}` exited {code}, "
                    f"expected {expected_code}:\n{output}"
                )
            elif got != want and not rewrite:
                diff = "\n".join(
                    f"  README: {w!r}\n  now:    {g!r}"
                    for w, g in zip(want + [""] * len(got), got + [""] * len(want), strict=False)
                    if w != g
                )
                failures.append(
                    f"README.md:{step.line}: `{step.command}` prints otherwise:\n{diff}"
                )
    if rewrite:
        for block, outputs in reversed(list(zip(found, printed, strict=True))):
            _rewrite(lines, block, outputs)
        README.write_text("\n".join(lines), encoding="utf-8")
    assert not failures, "\n\n".join(failures)


def _rewrite(lines: list[str], block: Block, printed: list[list[str]]) -> None:
    """Replace the block's shown output by what the commands printed (real values; the home
    and the checkout in their shown form)."""
    body: list[str] = []
    for step, output in zip(block.steps, printed, strict=True):
        index = step.line - 1
        body.append(lines[index])
        while lines[index].endswith("\\"):
            index += 1
            body.append(lines[index])
        body.extend(output)
    lines[block.start : block.end] = body
