"""The erase soak: thousands of erasures interleaved with writes and recalls, on both engines.
No error; the full-text index stays sound (on SQLite 3.40's ``optimize`` path it broke after
about a thousand); recall still finds what remains and never what was erased; every receipt
ends scrubbed. The soak (``make soak``) runs 5,000 erasures; the default run a small twin."""

from __future__ import annotations

import random
import statistics
import time

import pytest

from erase_support import scrub_all
from memwarden import Memwarden
from storage_soak_support import write_figures

FULL_ERASURES = 5000
TWIN_ERASURES = {"sqlite": 60, "postgresql": 20}
START_POOL = 40
RECALL_EVERY = 10


def _token(n: int) -> str:
    """A word no other memory's word stems to. Recall is stemmed (issue 17: FTS5 ``porter``,
    PostgreSQL's english stemmer), and bare letter tokens are not unique under it: "soakbabe"
    and "soakbabs" both stem to "soakbab". A closing digit ends the word in no suffix a
    stemmer takes off (PostgreSQL parses it as a numword, which is not stemmed)."""
    letters = ""
    n += 26**3
    while n:
        n, rest = divmod(n, 26)
        letters = chr(ord("a") + rest) + letters
    return f"soak{letters}0"


def erase_soak(mw: Memwarden, erasures: int, seed: int = 15) -> dict[str, object]:
    rng = random.Random(seed)
    live: dict[int, str] = {}
    erased: dict[int, str] = {}
    made = 0
    recalls = 0

    def add() -> None:
        nonlocal made
        token = _token(made)
        made += 1
        memory = mw.remember("atlas", f"Fact {token} about the rover", status="active").memory
        live[memory.id] = token

    def recall_checks() -> None:
        nonlocal recalls
        memory_id = rng.choice(list(live))
        hits = [h.id for h in mw.recall(live[memory_id], "atlas") if h.kind == "memory"]
        assert hits == [memory_id], f"recall lost memory {memory_id}: {hits}"
        if erased:
            gone = rng.choice(list(erased))
            assert not mw.recall(erased[gone], "atlas"), f"recall found erased memory {gone}"
        recalls += 2

    for _ in range(START_POOL):
        add()
    seconds: list[float] = []
    pending = 0
    for step in range(erasures):
        add()
        if step % 2 == 0:
            add()  # the store grows while it is erased
        if step % RECALL_EVERY == 0:
            recall_checks()
        victim = rng.choice(list(live))
        started = time.perf_counter()
        receipt = mw.erase(victim, "soak")
        seconds.append(time.perf_counter() - started)
        pending += receipt.status == "pending"
        erased[victim] = live.pop(victim)
    # What the background left pending (PostgreSQL: tables past the background's rewrite
    # bound), finished as an operator would: `memwarden memory erase-scrub --rewrite`.
    left_for_rewrite = mw.finish_scrubs()
    scrub_all(mw, 120, rewrite=True)
    report = mw.integrity_check()
    fulltext = next(c for c in report.checks if c.name == "fulltext_index")
    assert fulltext.status == "ok", fulltext
    assert report.findings == [], [f.to_dict() for f in report.findings]
    sample_live = rng.sample(list(live), min(50, len(live)))
    for memory_id in sample_live:
        assert [h.id for h in mw.recall(live[memory_id], "atlas")] == [memory_id]
    for memory_id in rng.sample(list(erased), min(50, len(erased))):
        assert not mw.recall(erased[memory_id], "atlas")
    assert mw.verify().ok
    seconds.sort()
    return {
        "erasures": erasures,
        "writes": made,
        "recalls": recalls + len(sample_live) + min(50, len(erased)),
        "errors": 0,
        "left_pending_at_erase": pending,
        "left_for_rewrite": left_for_rewrite,
        "fulltext_integrity": fulltext.status,
        "erase_p50_ms": round(statistics.median(seconds) * 1000, 2),
        "erase_p95_ms": round(seconds[int(len(seconds) * 0.95)] * 1000, 2),
        "erase_max_ms": round(seconds[-1] * 1000, 2),
    }


def test_erase_twin(mw: Memwarden, engine_name: str) -> None:
    figures = erase_soak(mw, TWIN_ERASURES[engine_name])
    write_figures(f"erase-{engine_name}-twin", {"engine": engine_name, **figures})


@pytest.mark.soak
def test_erase_soak(mw: Memwarden, engine_name: str) -> None:
    figures = erase_soak(mw, FULL_ERASURES)
    write_figures(f"erase-{engine_name}", {"engine": engine_name, **figures})
