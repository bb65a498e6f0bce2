"""`memwarden recall` (ranked hits with provenance) and `memwarden context` (a context pack)."""

from __future__ import annotations

from typing import Annotated

import typer

from memwarden.cli import render
from memwarden.cli.common import JsonFlag, emit_json, say, session, warn

Query = Annotated[str, typer.Argument(help="A question or keywords.")]
Where = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        "-w",
        help="Only memories whose metadata KEY holds VALUE: KEY=VALUE (repeatable, all "
        "must hold; chunks are left out).",
    ),
]
RankBy = Annotated[
    str | None,
    typer.Option(
        "--rank-by", help="relevance (default), recency or importance (blended with relevance)."
    ),
]
HalfLife = Annotated[
    float | None,
    typer.Option(
        "--half-life",
        help="With --rank-by recency: the age in DAYS at which recency counts half "
        "(default 30; 0.01-36500).",
    ),
]
Mode = Annotated[
    str | None,
    typer.Option("--mode", "-m", help="hybrid (default: words and meaning), text or semantic."),
]


def recall(
    ctx: typer.Context,
    query: Query,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project.")
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only memories of this type (repeatable)."),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits (1-100).")] = 10,
    mode: Mode = None,
    superseded: Annotated[
        bool,
        typer.Option(
            "--include-superseded", help="Also memories superseded recently, marked as such."
        ),
    ] = False,
    where: Where = None,
    rank_by: RankBy = None,
    half_life: HalfLife = None,
    json_out: JsonFlag = False,
) -> None:
    """Recall active memories and source chunks, ranked, each with its provenance."""
    with session(ctx) as mw:
        found = mw.recall_detailed(
            query,
            project,
            types or None,
            k,
            mode=mode,
            include_superseded=superseded,
            where=where,
            rank_by=rank_by,
            half_life_days=half_life,
        )
    if found.withheld:
        warn(
            f"{found.withheld} memories withheld: changed outside memwarden (their row MAC "
            "fails); `memwarden integrity check` names them"
        )
    if json_out:
        emit_json([hit.to_dict() for hit in found.hits])
        return
    if found.fallback:
        warn(f"recall by full text only: {found.fallback}")
    render.hits(found.hits)


def context(
    ctx: typer.Context,
    query: Query,
    project: Annotated[str, typer.Option("--project", "-p", help="The project.")],
    budget: Annotated[int, typer.Option("--budget", help="Characters (100-1,000,000).")] = 4000,
    mode: Mode = None,
    where: Where = None,
    rank_by: RankBy = None,
    half_life: HalfLife = None,
    json_out: JsonFlag = False,
) -> None:
    """A ready-to-paste context pack: project state, then memories, then sources (ranked as
    recall ranks, with the same --where and --rank-by)."""
    with session(ctx) as mw:
        pack = mw.context(
            query, project, budget, mode, where=where, rank_by=rank_by, half_life_days=half_life
        )
    if pack.fallback and not json_out:
        warn(f"ranked by full text only: {pack.fallback}")
    if pack.withheld and not json_out:
        warn(
            f"{pack.withheld} entries withheld: changed outside memwarden (their row MAC "
            "fails); `memwarden integrity check` names them"
        )
    if json_out:
        emit_json(pack.to_dict())
    else:
        say(pack.render() or "(nothing relevant in this project yet)")
