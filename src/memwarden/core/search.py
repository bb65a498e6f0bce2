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
   counts their words and, once more, the candidate's own; PostgreSQL: ts_rank_cd ranks with
   every selective and mid-common term while matching on the selective ones). Co-occurrence
   with a less common word is thus rewarded, at the cost of seeks bounded by the candidates.
4. With no selective term, the first ``cap`` documents holding all the mid-common terms (or
   any, if none holds all) are ranked; with none of those either, the same with every term.
On SQLite the ranking runs on the full-text index alone and only its top rows are joined to
the table for the project, type and status filters; when the filters leave fewer than ``k``
the ranking is re-run joined to them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

from memwarden.core import metadata

MAX_TERMS = 12
MIN_CAP = 500
CAP_FRACTION = 0.01
BOOST_FACTOR = 4  # terms in up to BOOST_FACTOR × cap documents still add to the score
OVERFETCH = 8  # top rows ranked on the index alone, per result asked for, before filtering
COMMON_TTL = 60.0  # seconds a term found common (or PostgreSQL's statistics) is trusted
CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Scored:
    id: int
    score: float


@dataclass(frozen=True)
class Corpus:
    """One searchable table: its rows, its index and the filters it accepts."""

    table: str
    sqlite_fts: str
    sqlite_vocab: str
    kind: str


MEMORIES = Corpus("memories", "memories_fts", "memories_fts_vocab", "memory")
CHUNKS = Corpus("source_chunks", "chunks_fts", "chunks_fts_vocab", "chunk")


@dataclass(frozen=True)
class Plan:
    """What to rank: ``any_of`` OR-ed, plus ``all_of`` as one group that must co-occur, the
    candidates; ``boost`` only adds to the score of candidates that hold its terms."""

    any_of: list[str]
    all_of: list[str]
    boost: list[str] = field(default_factory=list)


class _Cache:
    """Small, thread-safe, time-limited memory of per-database facts that are costly to learn.

    Kept per engine (and dropped with it), so two databases never share an entry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], tuple[float, Any]]]
        self._items = weakref.WeakKeyDictionary()

    def get(self, conn: Connection, key: tuple[str, str]) -> Any:
        with self._lock:
            item = self._items.get(conn.engine, {}).get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, conn: Connection, key: tuple[str, str], value: Any) -> None:
        with self._lock:
            items = self._items.setdefault(conn.engine, {})
            if len(items) >= CACHE_LIMIT:
                items.clear()
            items[key] = (time.monotonic() + COMMON_TTL, value)


_cache = _Cache()


def _filters(
    corpus: Corpus, project: str | None, types: Sequence[str] | None, superseded: bool = False
) -> str:
    clauses = []
    if corpus is MEMORIES:
        # Superseded memories only when a recall asks to see what changed.
        clauses.append(
            "t.status IN ('active', 'superseded')" if superseded else "t.status = 'active'"
        )
        if types:
            clauses.append("t.type IN :types")
    if project is not None:
        clauses.append("t.project = :project")
    return (" AND " + " AND ".join(clauses)) if clauses else ""


def _params(project: str | None, types: Sequence[str] | None) -> dict[str, object]:
    params: dict[str, object] = {}
    if project is not None:
        params["project"] = project
    if types:
        params["types"] = list(types)
    return params


def _bind(corpus: Corpus, sql: str, types: Sequence[str] | None) -> TextClause:
    statement = text(sql)
    if corpus is MEMORIES and types:
        statement = statement.bindparams(bindparam("types", expanding=True))
    return statement


def _row_count(conn: Connection, corpus: Corpus) -> int:
    """About how many rows the corpus holds: the largest id is close enough and costs nothing."""
    return int(conn.execute(text(f"SELECT max(id) FROM {corpus.table}")).scalar() or 0)  # noqa: S608


def _cap(conn: Connection, corpus: Corpus) -> int:
    return _cap_of(_row_count(conn, corpus))


def _cap_of(rows: int) -> int:
    return max(MIN_CAP, int(rows * CAP_FRACTION))


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
        cap = _cap(conn, corpus)
        frequency = _sqlite_frequencies(conn, corpus, terms, cap)
    else:
        cap, frequency = _postgres_frequencies(conn, corpus, terms)
    present = [t for t in terms if frequency[t] > 0]
    if not present:
        return []
    rank = _sqlite_rank if sqlite else _postgres_rank
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
        known = _cache.get(conn, (corpus.table, term))
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
                _cache.put(conn, (corpus.table, term), frequency[term])
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
    params = _params(project, types) | {"query": _fts5_query(plan), "k": k}
    where = _filters(corpus, project, types, superseded)
    if meta and corpus is MEMORIES:
        condition, meta_params = metadata.sql(meta, "sqlite")
        where += f" AND {condition}"
        params |= meta_params
    matches = f"SELECT rowid AS rid, -bm25({fts}) AS score FROM {fts} WHERE {fts} MATCH :query"  # noqa: S608
    if limit_matches is not None:
        matches = f"SELECT rid, score FROM ({matches} LIMIT :matches)"  # noqa: S608
        params["matches"] = limit_matches
    # Rank on the index alone, then filter its top rows: joining every match costs more
    # than ranking it.
    params["fetch"] = max(k * OVERFETCH, 50)
    sql = (
        f"SELECT t.id AS id, r.score AS score FROM ({matches} ORDER BY score DESC LIMIT :fetch) r "  # noqa: S608
        f"JOIN {table} t ON t.id = r.rid WHERE 1 = 1{where} ORDER BY r.score DESC, t.id DESC LIMIT :k"
    )
    found = [
        Scored(int(r.id), float(r.score)) for r in conn.execute(_bind(corpus, sql, types), params)
    ]
    if len(found) >= k:
        return found
    sql = (
        f"SELECT t.id AS id, r.score AS score FROM ({matches}) r "  # noqa: S608
        f"JOIN {table} t ON t.id = r.rid WHERE 1 = 1{where} ORDER BY r.score DESC, t.id DESC LIMIT :k"
    )
    return [
        Scored(int(r.id), float(r.score)) for r in conn.execute(_bind(corpus, sql, types), params)
    ]


# -- PostgreSQL (tsvector) --------------------------------------------------------------------


def _pg_lexeme(term: str) -> str:
    # Quoted so no character of the term is read as tsquery syntax.
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsquery(plan: Plan) -> str:
    parts = [_pg_lexeme(t) for t in plan.any_of]
    if plan.all_of:
        group = " & ".join(_pg_lexeme(t) for t in plan.all_of)
        parts.append(f"({group})" if plan.any_of else group)
    return " | ".join(parts)


def _rank_tsquery(plan: Plan) -> str:
    return " | ".join(_pg_lexeme(t) for t in [*plan.any_of, *plan.all_of, *plan.boost])


@dataclass(frozen=True)
class _Statistics:
    """The planner's most common lexemes of a tsvector column, as fractions of its rows."""

    rows: float
    common: dict[str, float]
    floor: float  # every lexeme not listed appears in fewer than this fraction of the rows


def _postgres_statistics(conn: Connection, corpus: Corpus) -> _Statistics | None:
    key = (corpus.table, " pg_stats")  # no term starts with a space
    cached = _cache.get(conn, key)
    if cached is not None:
        return cached if isinstance(cached, _Statistics) else None
    row = conn.execute(
        text(
            "SELECT s.most_common_elems::text::text[] AS elems, s.most_common_elem_freqs AS freqs, "
            "c.reltuples AS rows FROM pg_stats s JOIN pg_class c ON c.oid = to_regclass(:table) "
            "WHERE s.schemaname = current_schema() AND s.tablename = :table "
            "AND s.attname = 'content_tsv'"
        ),
        {"table": corpus.table},
    ).first()
    statistics: _Statistics | None = None
    if row is not None and row.elems and row.freqs and row.rows and row.rows > 0:
        elems, freqs = list(row.elems), [float(f) for f in row.freqs]
        # The frequencies are followed by their minimum and maximum (and maybe a null share).
        if len(freqs) > len(elems):
            statistics = _Statistics(
                float(row.rows), dict(zip(elems, freqs, strict=False)), freqs[len(elems)]
            )
    _cache.put(conn, key, statistics if statistics is not None else False)
    return statistics


def _postgres_stems(
    conn: Connection, corpus: Corpus, terms: list[str]
) -> tuple[int, dict[str, str]]:
    """The corpus's largest id (``_row_count``) and each term as the index holds it (the
    planner's statistics list stems), in one round trip: each statement costs one."""
    row = conn.execute(
        text(
            f"SELECT (SELECT max(id) FROM {corpus.table}) AS top, "  # noqa: S608
            "ARRAY(SELECT coalesce((SELECT string_agg(lexeme, ' ') "
            "FROM unnest(to_tsvector('memwarden_english', u.t))), '') "
            "FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS u(t, n) ORDER BY u.n) AS stems"
        ),
        {"terms": terms},
    ).one()
    stems = list(row.stems)
    if len(stems) != len(terms):
        raise RuntimeError(f"{len(terms)} terms were stemmed into {len(stems)} stems")
    return int(row.top or 0), {term: str(stem) for term, stem in zip(terms, stems, strict=True)}


def _postgres_counts(
    conn: Connection, corpus: Corpus, terms: list[str], cap: int
) -> dict[str, int]:
    """Each term's document count, counted no further than ``cap + 1`` index entries, in one
    statement (one per term cost a round trip each)."""
    rows = conn.execute(
        text(
            "SELECT u.n AS n, (SELECT count(*) FROM (SELECT 1 FROM "  # noqa: S608
            f"{corpus.table} WHERE content_tsv @@ to_tsquery('memwarden_english', u.q) "
            "LIMIT :limit) s) AS found "
            "FROM unnest(CAST(:queries AS text[])) WITH ORDINALITY AS u(q, n)"
        ),
        {"queries": [_pg_lexeme(t) for t in terms], "limit": cap + 1},
    )
    counts = {terms[int(row.n) - 1]: int(row.found) for row in rows}
    if len(counts) != len(terms):
        raise RuntimeError(f"{len(terms)} terms were counted into {len(counts)} counts")
    return counts


def _postgres_frequencies(
    conn: Connection, corpus: Corpus, terms: list[str]
) -> tuple[int, dict[str, int]]:
    """The corpus's cap and each term's document frequency: from the planner's statistics
    (cached) and the terms' stems, one statement; without statistics, a bounded count of
    each term, a second one (none when the corpus is empty)."""
    frequency: dict[str, int] = {}
    statistics = _postgres_statistics(conn, corpus)
    if statistics is not None:
        top, stems = _postgres_stems(conn, corpus, terms)
        cap = _cap_of(top)
        unlisted = int(statistics.floor * statistics.rows)
        for term in terms:
            if not stems[term]:  # no lexeme at all (punctuation): matches nothing
                frequency[term] = 0
                continue
            share = statistics.common.get(stems[term])
            if share is not None:
                frequency[term] = max(1, int(share * statistics.rows))
            elif unlisted <= cap:
                # Rarer than every listed lexeme: selective, and perhaps absent (harmless:
                # an absent word matches nothing and costs nothing).
                frequency[term] = max(1, unlisted)
    else:
        top = _row_count(conn, corpus)
        cap = _cap_of(top)
        if not top:  # an empty corpus: nothing to count, nothing to find
            return cap, dict.fromkeys(terms, 0)
    todo = [t for t in terms if t not in frequency]
    if todo:
        # No usable statistics: a bounded count, at most ``cap`` index entries; a term
        # beyond that is taken for a stop word (counting further costs too much here).
        for term, count in _postgres_counts(conn, corpus, todo, cap).items():
            frequency[term] = count if count <= cap else BOOST_FACTOR * cap + 1
    return cap, frequency


def _postgres_rank(
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
    params = _params(project, types) | {"k": k, "query": _tsquery(plan)}
    where = _filters(corpus, project, types, superseded)
    if meta and corpus is MEMORIES:
        condition, meta_params = metadata.sql(meta, "postgresql")
        where += f" AND {condition}"
        params |= meta_params
    # Each tsquery is parsed once, in FROM: psycopg prepares a statement run five times on
    # a connection, and PostgreSQL's generic plan for it would parse one written in the
    # select list again for every row ranked (measured: a third more time per row).
    if limit_matches is None:
        params["ranking"] = _rank_tsquery(plan)
        sql = (
            "SELECT t.id AS id, ts_rank_cd(t.content_tsv, r) AS score "  # noqa: S608
            f"FROM to_tsquery('memwarden_english', :query) q, "
            f"to_tsquery('memwarden_english', :ranking) r, {corpus.table} t "
            f"WHERE t.content_tsv @@ q{where} ORDER BY score DESC, t.id DESC LIMIT :k"
        )
    else:
        params["matches"] = limit_matches
        sql = (
            "SELECT b.id AS id, ts_rank_cd(b.content_tsv, q) AS score "  # noqa: S608
            "FROM to_tsquery('memwarden_english', :query) q, "
            f"LATERAL (SELECT t.id, t.content_tsv FROM {corpus.table} t "
            f"WHERE t.content_tsv @@ q{where} LIMIT :matches) b "
            "ORDER BY score DESC, b.id DESC LIMIT :k"
        )
    return [
        Scored(int(r.id), float(r.score)) for r in conn.execute(_bind(corpus, sql, types), params)
    ]
