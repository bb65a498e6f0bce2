"""Full-text candidate search on both engines, stemmed (FTS5 ``porter``, PostgreSQL's
``memwarden_english`` configuration: the english stemmer, no stop words dropped, like FTS5),
bounded so common words stay cheap.

Ranking costs in proportion to the documents a query matches: scoring every row that holds
"the" or "what" is what makes naive ranked search slow. So the search never ranks more than
about ``2 × cap`` documents (``cap`` = 1% of the rows, at least 500):

1. Each term's document frequency is known only up to ``4 × cap``. SQLite counts at most that
   many matches per term (a term found common is remembered for a minute per database: those
   are the counts that cost); PostgreSQL reads the planner's statistics
   (``pg_stats.most_common_elems``, refreshed by ANALYZE) and counts, up to ``cap``, only
   when it has none. Terms in at most ``cap`` documents are "selective"; terms in up to
   ``4 × cap`` are "mid-common"; the rest are stop words for this query and are ignored.
2. Selective terms find the candidates: rarest first they are OR-ed while their summed
   frequency stays within ``cap``; the remaining ones (two or more) join as one group that
   must co-occur. A document holding a single mid-frequency word and nothing rarer is the
   only kind left out.
3. Mid-common terms never widen the candidates; they only add to the score of candidates
   that hold them (SQLite: the candidates' query is repeated AND-ed with them, so bm25
   counts their words and, once more, the candidate's own; PostgreSQL: ts_rank ranks with
   every selective and mid-common term while matching on the selective ones). Co-occurrence
   with a less common word is thus rewarded, at the cost of seeks bounded by the candidates.
4. With no selective term, the first ``cap`` documents holding all the mid-common terms (or
   any, if none holds all) are ranked; with none of those either, the same with every term.
On SQLite the ranking runs on the full-text index alone and only its top rows are joined to
the table for the project, type and status filters; when the filters leave fewer than ``k``
the ranking is re-run joined to them.

The PostgreSQL half is ``search_postgres``; what both share is ``search_common``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

from memwarden.core import metadata, search_postgres
from memwarden.core.search_common import (
    BOOST_FACTOR,
    CHUNKS,
    MAX_TERMS,
    MEMORIES,
    OVERFETCH,
    Corpus,
    Plan,
    Scored,
    bound,
    cache,
    cap_for,
    filter_params,
    filter_sql,
)

__all__ = ["CHUNKS", "MEMORIES", "Corpus", "Plan", "Scored", "plan_terms", "search"]


def search(
    conn: Connection,
    corpus: Corpus,
    terms: Sequence[str],
    k: int,
    project: str | None = None,
    types: Sequence[str] | None = None,
    *,
    superseded: bool = False,
    where: metadata.Where = (),
) -> list[Scored]:
    """``where``: metadata conditions on memories, part of the ranking query's filters (so
    the top ``k`` are the best of the memories that match)."""
    terms = list(dict.fromkeys(t for t in terms if t))[:MAX_TERMS]
    if not terms or k <= 0:
        return []
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        cap = cap_for(conn, corpus)
        frequency = _sqlite_frequencies(conn, corpus, terms, cap)
    else:
        cap, frequency = search_postgres.frequencies(conn, corpus, terms)
    present = [t for t in terms if frequency[t] > 0]
    if not present:
        return []
    rank = _sqlite_rank if sqlite else search_postgres.rank
    boost = [t for t in present if cap < frequency[t] <= BOOST_FACTOR * cap]
    plan = plan_terms(present, frequency, cap, boost)
    if plan is not None:
        return rank(conn, corpus, plan, k, project, types, None, superseded, where)
    # No selective term: rank only the first ``cap`` documents holding all of the mid-common
    # terms, else any of them; with none, the same with every term.
    core = boost or present
    attempts = [Plan([], core), Plan(core, [])] if len(core) > 1 else [Plan(core, [])]
    results: list[Scored] = []
    for attempt in attempts:
        results = rank(conn, corpus, attempt, k, project, types, cap, superseded, where)
        if len(results) >= k:
            break
    return results


def plan_terms(
    present: list[str], frequency: dict[str, int], cap: int, boost: list[str] | None = None
) -> Plan | None:
    """The selective terms to rank, within about ``2 × cap`` candidates; None if all are common."""
    selective = sorted((t for t in present if frequency[t] <= cap), key=lambda t: frequency[t])
    if not selective:
        return None
    any_of: list[str] = []
    spent = 0
    for term in selective:
        if any_of and spent + frequency[term] > cap:
            break
        any_of.append(term)
        spent += frequency[term]
    all_of = selective[len(any_of) :]
    if len(all_of) == 1:  # a group of one is just another OR-ed term (at most ``cap`` more)
        any_of, all_of = any_of + all_of, []
    return Plan(any_of, all_of, list(boost or []))


# -- SQLite (FTS5) ----------------------------------------------------------------------------


def _fts5_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _fts5_query(plan: Plan) -> str:
    parts = [_fts5_phrase(t) for t in plan.any_of]
    if plan.all_of:
        group = " AND ".join(_fts5_phrase(t) for t in plan.all_of)
        parts.append(f"({group})" if plan.any_of else group)
    candidates = " OR ".join(parts)
    if not plan.boost:
        return candidates
    boost = " OR ".join(_fts5_phrase(t) for t in plan.boost)
    return f"{candidates} OR (({candidates}) AND ({boost}))"


def _sqlite_frequencies(
    conn: Connection, corpus: Corpus, terms: list[str], cap: int
) -> dict[str, int]:
    """Each term's document count, counted no further than ``BOOST_FACTOR × cap + 1``, in one
    statement; counts over ``cap`` are remembered for a while."""
    frequency: dict[str, int] = {}
    for term in terms:
        known = cache.get(conn, (corpus.table, term))
        if known is not None:
            frequency[term] = int(known)
    todo = [t for t in terms if t not in frequency]
    if todo:
        fts = corpus.sqlite_fts
        sql = " UNION ALL ".join(
            f"SELECT {i} AS i, count(*) AS n FROM (SELECT 1 FROM {fts} "  # noqa: S608
            f"WHERE {fts} MATCH :q{i} LIMIT :limit)"
            for i in range(len(todo))
        )
        params: dict[str, object] = {f"q{i}": _fts5_phrase(t) for i, t in enumerate(todo)}
        params["limit"] = BOOST_FACTOR * cap + 1
        for row in conn.execute(text(sql), params):
            term = todo[int(row.i)]
            frequency[term] = int(row.n)
            if frequency[term] > cap:
                cache.put(conn, (corpus.table, term), frequency[term])
    return frequency


def _sqlite_rank(
    conn: Connection,
    corpus: Corpus,
    plan: Plan,
    k: int,
    project: str | None,
    types: Sequence[str] | None,
    limit_matches: int | None,
    superseded: bool = False,
    meta: metadata.Where = (),
) -> list[Scored]:
    fts, table = corpus.sqlite_fts, corpus.table
    params = filter_params(project, types) | {"query": _fts5_query(plan), "k": k}
    where = filter_sql(corpus, project, types, superseded)
    if meta and corpus is MEMORIES:
        condition, meta_params = metadata.sql(meta, "sqlite")
        where += f" AND {condition}"
        params |= meta_params
    matches = f"SELECT rowid AS rid, -bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH :query"  # noqa: S608
    if limit_matches is not None:
        matches = f"SELECT rid, score FROM ({matches} LIMIT :matches)"  # noqa: S608
        params["matches"] = limit_matches
    # Rank on the index alone, then filter its top rows: joining every match costs more
    # than ranking it. CROSS JOIN keeps that order: left to choose, SQLite's planner may
    # scan every row of the project instead and probe the matches for each (13 ms against
    # 0.7 ms for a three-word match at 100k memories).
    params["fetch"] = max(k * OVERFETCH, 50)
    sql = (
        f"SELECT t.id AS id, r.score AS score FROM ({matches} ORDER BY score DESC LIMIT :fetch) r "  # noqa: S608
        f"CROSS JOIN {table} t ON t.id = r.rid WHERE 1 = 1{where} "
        "ORDER BY r.score DESC, t.id DESC LIMIT :k"
    )
    found = [
        Scored(int(r.id), float(r.score)) for r in conn.execute(bound(corpus, sql, types), params)
    ]
    if len(found) >= k:
        return found
    sql = (
        f"SELECT t.id AS id, r.score AS score FROM ({matches}) r "  # noqa: S608
        f"CROSS JOIN {table} t ON t.id = r.rid WHERE 1 = 1{where} "
        "ORDER BY r.score DESC, t.id DESC LIMIT :k"
    )
    return [
        Scored(int(r.id), float(r.score)) for r in conn.execute(bound(corpus, sql, types), params)
    ]
