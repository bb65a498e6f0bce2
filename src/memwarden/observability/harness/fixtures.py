"""The harness's fixtures file: per project, queries and what recall must return for each.

JSON or YAML (chosen by the file's suffix; anything else is tried as JSON, then YAML)::

    version: 1            # optional; only 1 exists
    k: 5                  # optional default top-k of every case (5 when absent)
    projects:
      atlas-rocket:
        - name: engine propellant                # optional label
          query: what does the Petrel-7 engine burn
          expect_text: liquid methane            # a string or a list: each must appear in
                                                 # the content of one of the top k hits
        - query: launch window
          expect_ids: [12]                       # memory ids that must be in the top k
          k: 3
          types: [project]                       # optional: only these memory types
          chunks: false                          # optional: memories only (default true)

Every problem is reported with where it is (``projects.atlas-rocket[1].k``) as a
``FixturesError``: a file that is wrong must never look like a retrieval that got worse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from memwarden.errors import InvalidInputError

DEFAULT_K = 5
MAX_K = 100  # recall's own bound
MAX_QUERY_CHARS = 2000
TOP_KEYS = frozenset({"version", "k", "projects"})
CASE_KEYS = frozenset({"name", "query", "k", "expect_ids", "expect_text", "types", "chunks"})


class FixturesError(InvalidInputError):
    """The fixtures file cannot be read or does not say what the harness needs."""


@dataclass(frozen=True)
class HarnessCase:
    project: str
    query: str
    k: int
    expect_ids: tuple[int, ...] = ()
    expect_text: tuple[str, ...] = ()
    name: str = ""
    types: tuple[str, ...] | None = None
    chunks: bool = True

    @property
    def label(self) -> str:
        return self.name or self.query

    def expected(self) -> dict[str, Any]:
        return {"ids": list(self.expect_ids), "text": list(self.expect_text)}


@dataclass(frozen=True)
class Fixtures:
    source: str  # where the cases came from, as recorded with each run
    cases: tuple[HarnessCase, ...]

    @property
    def projects(self) -> list[str]:
        return sorted({case.project for case in self.cases})

    def only(self, projects: set[str]) -> Fixtures:
        return Fixtures(self.source, tuple(c for c in self.cases if c.project in projects))


def load(path: Path, *, source: str | None = None) -> Fixtures:
    """Read and check the fixtures file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixturesError(f"harness fixtures file {path} does not exist") from None
    except IsADirectoryError:
        raise FixturesError(f"harness fixtures path {path} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise FixturesError(f"harness fixtures file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise FixturesError(
            f"cannot read harness fixtures file {path}: {exc.strerror or exc}"
        ) from None
    return parse(text, source or str(path), suffix=path.suffix.lower())


def parse(text: str, source: str, *, suffix: str = "") -> Fixtures:
    data = _decode(text, source, suffix)
    return Fixtures(source, tuple(_cases(data, source)))


def _decode(text: str, source: str, suffix: str) -> Any:
    if suffix == ".json":
        return _json(text, source)
    if suffix in (".yaml", ".yml"):
        return _yaml(text, source)
    try:
        return _json(text, source)
    except FixturesError:
        return _yaml(text, source)


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixturesError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise FixturesError(f"{source}: not valid YAML{where}: {problem}") from None


def _fail(source: str, where: str, message: str) -> FixturesError:
    return FixturesError(f"{source}: {where}: {message}")


def _unknown(source: str, where: str, found: Mapping[Any, Any], allowed: frozenset[str]) -> None:
    extra = sorted(str(key) for key in found if key not in allowed)
    if extra:
        raise _fail(
            source, where, f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _k(value: Any, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise _fail(source, where, f"k must be a whole number from 1 to {MAX_K}, not {value!r}")
    return value


def _cases(data: Any, source: str) -> list[HarnessCase]:
    if not isinstance(data, dict):
        raise FixturesError(f"{source}: the file must hold a mapping with a 'projects' key")
    _unknown(source, "top level", data, TOP_KEYS)
    version = data.get("version", 1)
    if version != 1:
        raise _fail(source, "version", f"only version 1 exists, not {version!r}")
    default_k = _k(data["k"], source, "k") if "k" in data else DEFAULT_K
    projects = data.get("projects")
    if not isinstance(projects, dict) or not projects:
        raise _fail(source, "projects", "a mapping of project name to a list of cases is needed")
    cases: list[HarnessCase] = []
    for project, items in projects.items():
        if not isinstance(project, str) or not project.strip():
            raise _fail(source, "projects", f"project name {project!r} is not a name")
        where = f"projects.{project}"
        if not isinstance(items, list) or not items:
            raise _fail(source, where, "a non-empty list of cases is needed")
        for index, item in enumerate(items):
            cases.append(_case(item, project, default_k, source, f"{where}[{index}]"))
    return cases


def _case(item: Any, project: str, default_k: int, source: str, where: str) -> HarnessCase:
    if not isinstance(item, dict):
        raise _fail(
            source, where, "a case is a mapping with 'query' and 'expect_ids'/'expect_text'"
        )
    _unknown(source, where, item, CASE_KEYS)
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _fail(source, f"{where}.query", "a non-empty query string is needed")
    if len(query) > MAX_QUERY_CHARS:
        raise _fail(source, f"{where}.query", f"the query is over {MAX_QUERY_CHARS} characters")
    ids = _ids(item.get("expect_ids", []), source, f"{where}.expect_ids")
    texts = _texts(item.get("expect_text", []), source, f"{where}.expect_text")
    if not ids and not texts:
        raise _fail(source, where, "say what recall must return: expect_ids and/or expect_text")
    name = item.get("name", "")
    if not isinstance(name, str):
        raise _fail(source, f"{where}.name", "a name is a string")
    chunks = item.get("chunks", True)
    if not isinstance(chunks, bool):
        raise _fail(source, f"{where}.chunks", "chunks is true or false")
    return HarnessCase(
        project=project,
        query=query,
        k=_k(item["k"], source, f"{where}.k") if "k" in item else default_k,
        expect_ids=ids,
        expect_text=texts,
        name=name,
        types=_types(item.get("types"), source, f"{where}.types"),
        chunks=chunks,
    )


def _ids(value: Any, source: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise _fail(source, where, f"a list of memory ids (positive whole numbers), not {value!r}")
    return tuple(value)


def _texts(value: Any, source: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise _fail(source, where, f"a non-empty string or a list of them, not {value!r}")
    return tuple(items)


def _types(value: Any, source: str, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(source, where, f"a non-empty list of memory types, not {value!r}")
    return tuple(value)
