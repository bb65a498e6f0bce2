"""``extract``: turn the interactions not yet processed into candidate memories.

Each project's interactions are read in id order past a watermark kept per (project,
extractor). A batch is extracted outside any transaction (an LLM call can be slow), then its
candidates, their origins and the new watermark commit together in one mutation, which first
checks the watermark has not moved (a concurrent run took the batch: this one re-reads). So a
rerun never extracts an interaction twice, and a run interrupted anywhere resumes where its
last committed batch ended.

Actors on the ledger: a new candidate is created by ``extractor:<name>`` (``extractor:rules``,
``extractor:llm``); a candidate that restates a live memory of the same project and type
(normalised equality, or token similarity at or above ``MEMWARDEN_REINFORCE_SIMILARITY``)
reinforces it instead, as ``reinforcement``. An interaction reinforces a memory at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from memwarden.audit.actor import REINFORCEMENT, acting_as
from memwarden.config import Settings
from memwarden.core import capture, lifecycle, memories, validate
from memwarden.core.capture import Interaction
from memwarden.core.extraction.base import Candidate, ExtractionFailure, Extractor
from memwarden.core.extraction.llm import LLMExtractor
from memwarden.core.extraction.rules import RuleExtractor
from memwarden.core.extraction.similarity import SimilarityIndex
from memwarden.core.models import Memory
from memwarden.core.runtime import Mutation, Runtime
from memwarden.core.text import content_hash
from memwarden.db import schema
from memwarden.errors import InvalidInputError, MemwardenError

log = structlog.get_logger(__name__)

W = schema.extraction_watermarks
O = schema.memory_origins  # noqa: E741 - the table's initial, like M for memories


@dataclass
class ExtractReport:
    extractor: str
    version: str
    interactions: int = 0
    created: list[int] = field(default_factory=list)
    reinforced: list[int] = field(default_factory=list)
    invalid_candidates: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why the run stopped early (the endpoint is down, ...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "extractor": self.extractor,
            "version": self.version,
            "interactions": self.interactions,
            "created": len(self.created),
            "reinforced": len(self.reinforced),
            "created_ids": self.created,
            "reinforced_ids": self.reinforced,
            "invalid_candidates": self.invalid_candidates,
            "failures": self.failures,
            "watermarks": self.watermarks,
            "stopped": self.stopped,
        }


def make_extractor(settings: Settings, name: str | None = None) -> Extractor:
    chosen = name or settings.extractor
    if chosen == "rules":
        return RuleExtractor()
    if chosen == "llm":
        return LLMExtractor(settings)
    raise InvalidInputError(f"unknown extractor {chosen!r}: use rules or llm")


def actor_for(extractor: Extractor) -> str:
    return f"extractor:{extractor.name}"


def watermark(conn: Connection, project: str, extractor: str) -> int:
    value = conn.execute(
        select(W.c.last_interaction_id).where(W.c.project == project, W.c.extractor == extractor)
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def run(
    rt: Runtime,
    *,
    project: str | None = None,
    extractor: Extractor | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
) -> ExtractReport:
    """Extract every project's (or one project's) new interactions; ``limit`` caps how many."""
    size = batch_size or rt.settings.extract_batch_size
    if size < 1 or (limit is not None and limit < 1):
        raise InvalidInputError("the batch size and the limit must be positive")
    owned = extractor is None
    chosen = extractor or make_extractor(rt.settings)
    report = ExtractReport(chosen.name, chosen.version)
    try:
        with rt.read() as conn:
            if project is not None:
                validate.project_name(project)
                names = [validate.project_exists(conn, project)]
            else:
                names = list(
                    conn.execute(select(schema.projects.c.name).order_by("name")).scalars()
                )
        for name in names:
            remaining = None if limit is None else limit - report.interactions
            if remaining is not None and remaining <= 0:
                break
            _run_project(rt, name, chosen, size, remaining, report)
            if report.stopped:
                break
    finally:
        if owned:
            chosen.close()
    return report


def _run_project(
    rt: Runtime,
    project: str,
    extractor: Extractor,
    size: int,
    remaining: int | None,
    report: ExtractReport,
) -> None:
    index = _live_index(rt, project)
    while remaining is None or remaining > 0:
        take = size if remaining is None else min(size, remaining)
        with rt.read() as conn:
            seen = watermark(conn, project, extractor.name)
            batch = list(capture.read_after(conn, project, seen, take))
        if not batch:
            break
        results: list[tuple[Interaction, list[Candidate]]] = []
        for interaction in batch:
            try:
                results.append((interaction, extractor.extract(interaction)))
            except ExtractionFailure as failure:
                report.failures[failure.kind] = report.failures.get(failure.kind, 0) + 1
                if failure.fatal:
                    report.stopped = f"{failure.kind} at interaction {interaction.id}: {failure}"
                    break
                results.append((interaction, []))  # a bad answer: skip this interaction
        if results and _commit(rt, project, extractor, seen, results, index, report):
            report.interactions += len(results)
            if remaining is not None:
                remaining -= len(results)
        if report.stopped:
            break
    with rt.read() as conn:
        report.watermarks[project] = watermark(conn, project, extractor.name)


def _live_index(rt: Runtime, project: str) -> SimilarityIndex:
    M = schema.memories
    index = SimilarityIndex(rt.settings.reinforce_similarity)
    with rt.read() as conn:
        rows = conn.execute(
            select(M.c.id, M.c.type, M.c.content).where(
                M.c.project == project, M.c.status.in_(lifecycle.LIVE)
            )
        )
        for row in rows:
            index.add(int(row.id), row.type, row.content)
    return index


def _commit(
    rt: Runtime,
    project: str,
    extractor: Extractor,
    seen: int,
    results: Sequence[tuple[Interaction, list[Candidate]]],
    index: SimilarityIndex,
    report: ExtractReport,
) -> bool:
    """Store one batch and move the watermark; False when another run got there first."""
    created: list[int] = []
    reinforced: list[int] = []
    invalid = 0
    with rt.mutation() as m:
        if not _claim(m, project, extractor.name, seen, results[-1][0].id):
            log.info("extraction_batch_taken", project=project, after=seen)
            return False
        writer = _Writer(m, rt.settings, project, extractor, index)
        writer.preload([interaction.id for interaction, _ in results])
        for interaction, candidates in results:
            for candidate in candidates:
                try:
                    outcome = writer.store(interaction, candidate)
                except InvalidInputError as exc:
                    invalid += 1
                    log.warning(
                        "extraction_candidate_invalid", interaction=interaction.id, error=str(exc)
                    )
                    continue
                if outcome is not None:
                    (reinforced if outcome[1] else created).append(outcome[0])
        writer.flush()
    report.created.extend(created)
    report.reinforced.extend(reinforced)
    report.invalid_candidates += invalid
    return True


def _claim(m: Mutation, project: str, extractor: str, seen: int, upto: int) -> bool:
    key = (W.c.project == project, W.c.extractor == extractor)
    current = m.conn.execute(
        select(W.c.last_interaction_id).where(*key).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        if seen != 0:
            return False
        try:
            with m.conn.begin_nested():
                m.conn.execute(
                    insert(W).values(
                        project=project,
                        extractor=extractor,
                        last_interaction_id=upto,
                        updated_at=m.now,
                    )
                )
        except IntegrityError:
            return False  # a concurrent run created it first
        return True
    if int(current) != seen:
        return False
    m.conn.execute(update(W).where(*key).values(last_interaction_id=upto, updated_at=m.now))
    return True


@dataclass
class _Writer:
    """Writes one batch's candidates inside its mutation."""

    m: Mutation
    settings: Settings
    project: str
    extractor: Extractor
    index: SimilarityIndex
    pairs: set[tuple[int, int]] = field(default_factory=set)  # (memory, interaction) known
    origins: list[dict[str, Any]] = field(default_factory=list)

    def preload(self, interaction_ids: list[int]) -> None:
        rows = self.m.conn.execute(
            select(O.c.memory_id, O.c.interaction_id).where(O.c.interaction_id.in_(interaction_ids))
        )
        self.pairs.update((int(r.memory_id), int(r.interaction_id)) for r in rows)

    def flush(self) -> None:
        if self.origins:
            self.m.conn.execute(insert(O), self.origins)

    def _origin(self, memory_id: int, interaction: Interaction) -> None:
        self.pairs.add((memory_id, interaction.id))
        self.origins.append(
            {
                "memory_id": memory_id,
                "interaction_id": interaction.id,
                "extractor": self.extractor.name,
                "extractor_version": self.extractor.version,
                "created_at": self.m.now,
            }
        )

    def store(self, interaction: Interaction, candidate: Candidate) -> tuple[int, bool] | None:
        """Create the candidate or reinforce what it restates: (memory id, reinforced), or
        None when this interaction already reinforced that memory."""
        text = validate.content(self.settings, candidate.content)
        type_ = validate.memory_type(self.settings, candidate.type)
        confidence = validate.confidence(candidate.confidence)
        target = self._restated(type_, text)
        name, version = self.extractor.name, self.extractor.version
        if target is not None:
            if (target.id, interaction.id) in self.pairs:
                return None
            note = f"restated in {_where(candidate, interaction)} ({name} {version})"
            with acting_as(REINFORCEMENT):
                after = memories._reinforce(self.m, target, note)
            self._origin(after.id, interaction)
            return after.id, True
        note = f"extracted from {_where(candidate, interaction)} by {name} {version}"
        extra = {
            "interaction_id": interaction.id,
            "extractor": name,
            "extractor_version": version,
            "cue": candidate.cue,
            "side": candidate.side,
        }
        with acting_as(actor_for(self.extractor)):
            result = memories.create_in(
                self.m,
                self.project,
                text,
                type_,
                confidence,
                lifecycle.CANDIDATE,
                None,
                note,
                extra,
            )
        if (result.memory.id, interaction.id) in self.pairs:
            return None
        self._origin(result.memory.id, interaction)
        self.index.add(result.memory.id, type_, text)
        return result.memory.id, result.reinforced

    def _restated(self, type_: str, text: str) -> Memory | None:
        """The live memory this statement restates: the same normalised text first, then the
        most similar one."""
        digest = content_hash(text)
        known = self.index.exact(type_, digest)
        if known is not None:
            memory = self._live(known, type_)
            if memory is not None and memory.content_hash == digest:
                return memory
            return memories._find_live(self.m.conn, self.project, type_, digest)
        for memory_id in self.index.find(type_, text):
            memory = self._live(memory_id, type_)
            if memory is not None:
                return memory
        return None

    def _live(self, memory_id: int, type_: str) -> Memory | None:
        try:
            memory = memories.load(self.m.conn, memory_id, for_update=True)
        except MemwardenError:
            memory = None
        if memory is None or memory.status not in lifecycle.LIVE or memory.type != type_:
            self.index.discard(memory_id)  # rejected, expired or changed since the run began
            return None
        return memory


def _where(candidate: Candidate, interaction: Interaction) -> str:
    """Where in the interaction a statement was found, for the ledger's note: the user's
    words are the default; the assistant's are said so."""
    if candidate.side == "assistant":
        return f"the assistant's response in interaction {interaction.id}"
    return f"interaction {interaction.id}"
