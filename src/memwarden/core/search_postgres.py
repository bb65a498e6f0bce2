"""Full-text search on PostgreSQL (``search``): a tsvector column with a GIN index, the
``memwarden_english`` configuration, the planner's statistics for the terms' frequencies and
``ts_rank`` for the ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from memwarden.core import metadata
from memwarden.core.search_common import (
    BOOST_FACTOR,
    MEMORIES,
    Corpus,
    Plan,
    Scored,
    bound,
    cache,
    cap_of,
    filter_params,
    filter_sql,
    row_count,
)
from memwarden.core.search_common import stems as stems_cache


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
    cached = cache.get(conn, key)
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
    cache.put(conn, key, statistics if statistics is not None else False)
    return statistics


# A plan's ranking query OR-s all its words (``_rank_tsquery``), and on such a query
# ts_rank_cd's cover density is just 0.1 per occurrence, at about 4 µs a row against ts_rank's
# 1 µs; ts_rank counts each word held, a repeat a little more (much as bm25 saturates on
# SQLite). Same recall@10 on bench/recall.py's planted answers at 100k (0.96, 83 of 100 first)
# and the same evaluation-set scores, with a recall p95 21-31% lower (docs/recall.md,
# "PostgreSQL ranks with ts_rank"). The bounded ranking of common words (``limit_matches``)
# keeps ts_rank_cd: its query may be an AND of them, where cover density rewards the words
# standing close together.
RANK = "ts_rank"
BOUNDED_RANK = "ts_rank_cd"

# Cache keys: no table name and no term starts with a space.
_TOP, _STEM = " top", " stem"


def _postgres_stems(
    conn: Connection, corpus: Corpus, terms: list[str]
) -> tuple[int, dict[str, str]]:
    """The corpus's largest id (``row_count``) and each term as the index holds it (the
    planner's statistics list stems), in one round trip: each statement costs one. Both are
    remembered for ``COMMON_TTL``: a term's stem never changes, and the largest id only sets
    the search's bound (a minute's growth moves it by little), so a recall of words seen in
    the last minute sends no statement here. An empty corpus is not remembered: its first
    row must be found at once."""
    top = cache.get(conn, (corpus.table, _TOP))
    known = {term: stems_cache.get(conn, (_STEM, term)) for term in terms}
    if top is not None and None not in known.values():
        return int(top), {term: str(stem) for term, stem in known.items()}
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
    top = int(row.top or 0)
    if top > 0:
        cache.put(conn, (corpus.table, _TOP), top)
    for term, stem in zip(terms, stems, strict=True):
        stems_cache.put(conn, (_STEM, term), str(stem))
    return top, {term: str(stem) for term, stem in zip(terms, stems, strict=True)}


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


def frequencies(conn: Connection, corpus: Corpus, terms: list[str]) -> tuple[int, dict[str, int]]:
    """The corpus's cap and each term's document frequency: from the planner's statistics
    (cached) and the terms' stems, one statement; without statistics, a bounded count of
    each term, a second one (none when the corpus is empty)."""
    frequency: dict[str, int] = {}
    statistics = _postgres_statistics(conn, corpus)
    if statistics is not None:
        top, stems = _postgres_stems(conn, corpus, terms)
        cap = cap_of(top)
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
        top = row_count(conn, corpus)
        cap = cap_of(top)
        if not top:  # an empty corpus: nothing to count, nothing to find
            return cap, dict.fromkeys(terms, 0)
    todo = [t for t in terms if t not in frequency]
    if todo:
        # No usable statistics: a bounded count, at most ``cap`` index entries; a term
        # beyond that is taken for a stop word (counting further costs too much here).
        for term, count in _postgres_counts(conn, corpus, todo, cap).items():
            frequency[term] = count if count <= cap else BOOST_FACTOR * cap + 1
    return cap, frequency


def rank(
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
    params = filter_params(project, types) | {"k": k, "query": _tsquery(plan)}
    where = filter_sql(corpus, project, types, superseded)
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
            f"SELECT t.id AS id, {RANK}(t.content_tsv, r) AS score "  # noqa: S608
            f"FROM to_tsquery('memwarden_english', :query) q, "
            f"to_tsquery('memwarden_english', :ranking) r, {corpus.table} t "
            f"WHERE t.content_tsv @@ q{where} ORDER BY score DESC, t.id DESC LIMIT :k"
        )
    else:
        params["matches"] = limit_matches
        sql = (
            f"SELECT b.id AS id, {BOUNDED_RANK}(b.content_tsv, q) AS score "  # noqa: S608
            "FROM to_tsquery('memwarden_english', :query) q, "
            f"LATERAL (SELECT t.id, t.content_tsv FROM {corpus.table} t "
            f"WHERE t.content_tsv @@ q{where} LIMIT :matches) b "
            "ORDER BY score DESC, b.id DESC LIMIT :k"
        )
    return [
        Scored(int(r.id), float(r.score)) for r in conn.execute(bound(corpus, sql, types), params)
    ]
