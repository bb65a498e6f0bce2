"""Concurrency on PostgreSQL through a real server: 8 client threads x 200 mutations, each
thread with its own keys (one writes, another with the promote scope promotes: nobody
promotes their own writing). No 5xx; every mutation has exactly one ledger row naming the key
that made it; the chain verifies afterwards."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx

from api_support import auth, running_server
from memwarden import Memwarden, Settings
from memwarden.core.provenance import Scopes

THREADS = 8
MEMORIES_PER_THREAD = 100  # each is created, then promoted: 200 mutations per thread


def worker(url: str, token: str, promoter: str, index: int) -> tuple[list[int], list[int]]:
    """Create then promote memories; returns their ids and every status code seen."""
    ids: list[int] = []
    statuses: list[int] = []
    with httpx.Client(base_url=url, headers=auth(token), timeout=60.0) as client:
        for n in range(MEMORIES_PER_THREAD):
            created = client.post(
                "/memory",
                json={
                    "project": "atlas",
                    "content": f"Thread {index} learned fact {n}",
                    "type": "knowledge",
                },
            )
            statuses.append(created.status_code)
            if created.status_code != 201:
                continue
            memory_id = created.json()["memory"]["id"]
            ids.append(memory_id)
            promoted = client.post(f"/memory/{memory_id}/promote", headers=auth(promoter))
            statuses.append(promoted.status_code)
    return ids, statuses


def test_eight_clients_two_hundred_mutations_each(pg_schema_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=pg_schema_url)
    with Memwarden.init(settings) as mw:
        mw.add_project("atlas")
        tokens = [mw.create_key(f"agent-{i}", "write")[1] for i in range(THREADS)]
        may_promote = replace(Scopes.for_role("write"), promote=True)
        promoters = [
            mw.create_key(f"promoter-{i}", "write", may_promote)[1] for i in range(THREADS)
        ]
        rows_before = mw.anchor().seq
    with running_server(settings) as server, ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(lambda i: worker(server.url, tokens[i], promoters[i], i), range(THREADS))
        )
    statuses = Counter(code for _, codes in results for code in codes)
    assert statuses == {201: THREADS * MEMORIES_PER_THREAD, 200: THREADS * MEMORIES_PER_THREAD}
    with Memwarden(settings) as mw:
        for index, (ids, _) in enumerate(results):
            assert len(ids) == MEMORIES_PER_THREAD
            for memory_id in ids:
                trail = [(e.action, e.actor) for e in mw.history(memory_id)]
                assert trail == [
                    ("created", f"api:agent-{index}"),
                    ("promoted", f"api:promoter-{index}"),
                ]
        assert mw.anchor().seq - rows_before == THREADS * MEMORIES_PER_THREAD * 2
        report = mw.verify()
        assert report.ok, report.reason
