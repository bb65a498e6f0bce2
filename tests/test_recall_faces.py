"""Recall's mode, fallback and change awareness over HTTP, the CLI and MCP's tool function."""

from __future__ import annotations

from pathlib import Path

import pytest

from api_support import assert_error, client_for
from cli_support import Cli
from memwarden import Memwarden, Settings
from memwarden.observability.faults import faults
from recall_support import with_model


def test_http_recall_mode_fallback_and_health(settings: Settings) -> None:
    faults.reset()
    with Memwarden.init(with_model(settings)) as mw, client_for(mw) as client:
        mw.add_project("p")
        diet = mw.remember(
            "p", "Strictly pescatarian: fish yes, red meat never.", status="active"
        ).memory.id
        mw.remember("p", "The rocket launch moved to April.", status="active")
        assert mw.wait_for_embeddings(60)
        body = client.post(
            "/recall", json={"query": "what does the user eat", "project": "p", "k": 1}
        ).json()
        assert (body["mode"], body["mode_used"], body["fallback"]) == ("hybrid", "hybrid", None)
        assert body["hits"][0]["id"] == diet
        text = client.post(
            "/recall", json={"query": "what does the user eat", "project": "p", "mode": "text"}
        ).json()
        assert text["mode_used"] == "text" and diet not in [h["id"] for h in text["hits"]]
        assert_error(client.post("/recall", json={"query": "x", "mode": "fuzzy"}), 422)
        pack = client.post(
            "/context/build", json={"query": "diet", "project": "p", "mode": "semantic"}
        ).json()
        assert pack["mode_used"] == "semantic" and "pescatarian" in pack["text"].lower()
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert health["recall"]["default_mode"] == "hybrid"
        assert health["recall"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_http_recall_without_embedder_says_text(settings: Settings) -> None:
    with Memwarden.init(settings) as mw, client_for(mw) as client:
        mw.add_project("p")
        mw.remember("p", "The user prefers tea", status="active")
        body = client.post("/recall", json={"query": "preferring tea", "project": "p"}).json()
        assert body["mode_used"] == "text" and len(body["hits"]) == 1
        assert "MEMWARDEN_EMBEDDER=none" in body["fallback"]
        assert client.get("/health").json()["recall"]["default_mode"] == "text"


@pytest.mark.parametrize("engine_name", ["sqlite"])
def test_cli_mode_index_and_doctor(settings: Settings, tmp_path: Path) -> None:
    cli = Cli(settings.home)
    cli.run("init")
    cli.run("project", "add", "p")
    cli.run(
        "memory",
        "add",
        "Strictly pescatarian: fish yes, red meat never.",
        "-p",
        "p",
        "-t",
        "preference",
        "--status",
        "active",
    )
    # Created with the embedder off: the index lacks it, and says so.
    local = {"MEMWARDEN_EMBEDDER": "local"}
    status = cli.run("index", "status", "--json", code=1, env=local)
    assert '"missing": 1' in status.stdout
    assert '"written": 1' in cli.run("index", "rebuild", "--json", env=local).stdout
    cli.run("index", "status", env=local)
    hits = cli.json("recall", "what does the user eat", "--mode", "semantic")
    assert hits == []  # MEMWARDEN_EMBEDDER=none here: semantic falls back to text
    out = cli.run("recall", "what does the user eat", "--mode", "semantic", env=local).stdout
    assert "pescatarian" in out.lower()
    fallback = cli.run("recall", "pescatarian", "--mode", "semantic")
    assert "full text only" in fallback.stderr and "pescatarian" in fallback.stdout.lower()
    assert "mode must be one of" in cli.error("recall", "x", "--mode", "fuzzy")
    doctor = cli.run("doctor", "--json", env=local).stdout
    assert '"recall_embedder"' in doctor and '"recall_vectors"' in doctor
    assert '"warn"' in cli.run("doctor", "--json").stdout  # no embedder: a warning
