"""The machine's speed kept beside every benchmark result (``bench._harness.Speed``): a figure
from a slower machine must not pass for a regression."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's bench package
from bench._harness import Result, Speed, speed_detail, speed_text
from bench.run import table


def test_the_speed_is_measured_not_assumed() -> None:
    speed = Speed.now(tries=1)
    # Plausible for any machine that runs the suite: a loop step is nanoseconds, not zero,
    # and an HMAC of 350 bytes costs more than one loop step.
    assert 1.0 < speed.loop_ns < 10_000.0
    assert speed.hmac_us * 1000 > speed.loop_ns


def test_every_result_shows_it_in_the_table_and_keeps_it_in_json() -> None:
    result = Result("example", 1.0, "ms", "sqlite", 10)
    result.detail.update(speed_detail(Speed(loop_ns=41.26, hmac_us=1.234)))
    assert result.to_json()["speed_loop_ns"] == 41.3
    assert result.to_json()["speed_hmac_us"] == 1.23
    console = Console(width=250, record=True)
    console.print(table([result], "quick", 1.0))
    assert "41 ns" in console.export_text()
    assert speed_text({}) == "—"
