"""Ingesting text and Markdown files: idempotent by content hash, one transaction per file."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select, update

from memwarden.core import validate, vectors
from memwarden.core.chunking import chunk_text
from memwarden.core.memories import load, update_in
from memwarden.core.models import Document
from memwarden.core.runtime import Mutation, Runtime
from memwarden.db import schema
from memwarden.errors import InvalidInputError, NotFoundError

log = structlog.get_logger(__name__)

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst", ".mdx"})
MAX_FILE_BYTES = 20 * 1024 * 1024
D = schema.documents
C = schema.source_chunks

Progress = Callable[[Path], None]


@dataclass(frozen=True)
class FileOutcome:
    uri: str
    status: str  # created, updated, unchanged, skipped
    document_id: int | None = None
    chunks: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.files if outcome.status == status)

    @property
    def skipped(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if outcome.status == "skipped"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skipped"),
            "chunks": sum(outcome.chunks for outcome in self.files),
            "files": [outcome.to_dict() for outcome in self.files],
        }


def collect_files(paths: list[Path]) -> list[Path]:
    """Every file to read, or an error naming the first path that does not exist."""
    return scan(paths)[0]


def scan(paths: list[Path]) -> tuple[list[Path], list[FileOutcome]]:
    """The files to read, and what a folder holds that is not read, each with its reason: a
    file that is not text or Markdown by its suffix, a hidden file, a hidden folder (one entry
    for the whole folder), a symbolic link that leaves the folder. A file named on its own is
    always read."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise NotFoundError(f"no such file or folder: {', '.join(missing)}")
    files: list[Path] = []
    skipped: list[FileOutcome] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        root = path.resolve()
        for folder, subfolders, names in os.walk(path):
            here = Path(folder)
            kept = []
            for name in sorted(subfolders):
                if name.startswith("."):
                    skipped.append(_skip(here / name, "hidden folder, not read"))
                elif (here / name).is_symlink():
                    # os.walk lists it but never goes in: said, not passed over in silence.
                    skipped.append(_skip_link(here / name, "a symbolic link to a folder"))
                else:
                    kept.append(name)
            subfolders[:] = kept
            for name in sorted(names):
                file = here / name
                if name.startswith("."):
                    skipped.append(_skip(file, "hidden file"))
                elif file.suffix.lower() not in TEXT_SUFFIXES:
                    skipped.append(_skip(file, _unsupported(file)))
                elif file.is_symlink() and not _inside(file, root):
                    # A folder from elsewhere (a clone, an archive) may hold `notes.md` linked
                    # to a private file of the reader's: its text would become memory served
                    # to agents. A link is followed only to a file inside the folder.
                    skipped.append(_skip_link(file, "a symbolic link to a file outside the folder"))
                elif file.is_file():
                    files.append(file)
                else:
                    skipped.append(_skip(file, "not a regular file"))
    return files, skipped


def _unsupported(file: Path) -> str:
    kind = f"a {file.suffix.lower()} file" if file.suffix else "a file without a suffix"
    return f"{kind}, not text or Markdown (read: {', '.join(sorted(TEXT_SUFFIXES))})"


def _inside(link: Path, root: Path) -> bool:
    """Whether ``link`` leads to a path inside ``root`` (False for a loop of links)."""
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop: RuntimeError up to Python 3.12, OSError after
        return False


def _skip(path: Path, reason: str) -> FileOutcome:
    try:
        where = str(path.resolve())
    except (OSError, RuntimeError):  # a loop of links
        where = os.path.abspath(path)
    return FileOutcome(where, "skipped", reason=reason)


def _skip_link(path: Path, what: str) -> FileOutcome:
    """A link, named by its own path (its target is not read, nor shown resolved)."""
    return FileOutcome(
        os.path.abspath(path), "skipped", reason=f"{what}, not followed (name it to read it)"
    )


def _read_text(path: Path) -> str:
    # Opened without blocking and looked at before a byte is read: a FIFO named on the command
    # line blocked for ever, /dev/zero was read until memory ran out, and a file of 400 MB was
    # read whole to be told it was too large (a folder's scan already skipped them).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise InvalidInputError("not a regular file (a FIFO, a device or a socket)")
        if found.st_size > MAX_FILE_BYTES:
            raise InvalidInputError(f"larger than {MAX_FILE_BYTES} bytes")
        data = handle.read(MAX_FILE_BYTES + 1)  # the file may have grown since
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInputError(f"larger than {MAX_FILE_BYTES} bytes")
    if b"\x00" in data:
        raise InvalidInputError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (byte {exc.start})") from exc


def _try_read(path: Path) -> tuple[str | None, FileOutcome | None]:
    try:
        return _read_text(path), None
    except (InvalidInputError, OSError) as exc:
        reason = str(exc) if isinstance(exc, InvalidInputError) else (exc.strerror or str(exc))
        return None, _skip(path, reason)


def ingest_paths(
    rt: Runtime,
    paths: list[Path],
    project: str,
    progress: Progress | None = None,
    *,
    strict: bool = False,
) -> IngestReport:
    """Ingest every readable file; every file left out is in the report with its reason.

    ``strict``: when any file would be left out, refuse before ingesting anything."""
    with rt.read() as conn:
        validate.project_exists(conn, project)
    files, skipped = scan(paths)
    if strict:
        unreadable = [outcome for path in files if (outcome := _try_read(path)[1]) is not None]
        refused = skipped + unreadable
        if refused:
            shown = "; ".join(f"{o.uri}: {o.reason}" for o in refused[:5])
            more = f"; and {len(refused) - 5} more" if len(refused) > 5 else ""
            raise InvalidInputError(
                f"--strict: {len(refused)} file(s) would be skipped, nothing ingested: "
                f"{shown}{more}"
            )
    report = IngestReport(files=list(skipped))
    for outcome in skipped:
        log.warning("ingest_skipped", path=outcome.uri, reason=outcome.reason)
    for path in files:
        text, failed = _try_read(path)
        if failed is not None:
            log.warning("ingest_skipped", path=failed.uri, reason=failed.reason)
            report.files.append(failed)
        else:
            assert text is not None
            report.files.append(
                ingest_text(rt, project, str(path.resolve()), text, title=path.stem)
            )
        if progress is not None:
            progress(path)
    return report


def ingest_text(rt: Runtime, project: str, uri: str, text: str, title: str = "") -> FileOutcome:
    """Store one document's chunks; unchanged content changes nothing."""
    if not uri.strip():
        raise InvalidInputError("a document needs a uri (its path or name)")
    if "\x00" in text:
        raise InvalidInputError("document text contains a NUL character")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    chunks = chunk_text(text, rt.settings.chunk_target_chars)
    with rt.mutation() as m:
        validate.project_exists(m.conn, project)
        row = m.conn.execute(
            select(D).where(D.c.project == project, D.c.uri == uri).with_for_update()
        ).first()
        if row is not None and row.content_hash == digest:
            return FileOutcome(uri, "unchanged", int(row.id))
        size = len(text.encode("utf-8"))
        if row is None:
            document_id = m.conn.execute(
                insert(D)
                .values(
                    project=project,
                    uri=uri,
                    title=title,
                    content_hash=digest,
                    size_bytes=size,
                    created_at=m.now,
                    updated_at=m.now,
                )
                .returning(D.c.id)
            ).scalar_one()
            before = None
        else:
            document_id = int(row.id)
            before = _document(row).snapshot(_chunk_count(m, document_id))
            _drop_chunks(m, document_id)
            m.conn.execute(
                update(D)
                .where(D.c.id == document_id)
                .values(title=title, content_hash=digest, size_bytes=size, updated_at=m.now)
            )
        if chunks:
            m.conn.execute(
                insert(C),
                [
                    {
                        "document_id": document_id,
                        "project": project,
                        "ordinal": ordinal,
                        "heading": chunk.heading,
                        "content": chunk.content,
                        "created_at": m.now,
                    }
                    for ordinal, chunk in enumerate(chunks)
                ],
            )
        document = _document(m.conn.execute(select(D).where(D.c.id == document_id)).one())
        action = "created" if before is None else "updated"
        m.record("document", document_id, project, action, before, document.snapshot(len(chunks)))
        return FileOutcome(uri, action, document_id, len(chunks))


def _document(row: Any) -> Document:
    return Document(
        int(row.id),
        row.project,
        row.uri,
        row.title,
        row.content_hash,
        int(row.size_bytes),
        row.created_at,
        row.updated_at,
    )


def _chunk_count(m: Mutation, document_id: int) -> int:
    return int(
        m.conn.execute(
            select(func.count()).select_from(C).where(C.c.document_id == document_id)
        ).scalar_one()
    )


def _drop_chunks(m: Mutation, document_id: int) -> None:
    """Old chunks go; memories that cited them lose the citation through an audited update."""
    old_ids = select(C.c.id).where(C.c.document_id == document_id)
    citing = (
        m.conn.execute(
            select(schema.memories.c.id).where(schema.memories.c.source_chunk_id.in_(old_ids))
        )
        .scalars()
        .all()
    )
    for memory_id in citing:
        memory = load(m.conn, int(memory_id), for_update=True)
        update_in(m, memory, {"source_chunk_id": None}, "source chunk replaced by a re-ingest")
    # Their vectors go with them, in the same transaction (a recall never finds a dead chunk).
    removed = m.conn.execute(
        delete(schema.embeddings).where(
            schema.embeddings.c.kind == "chunk", schema.embeddings.c.item_id.in_(old_ids)
        )
    ).rowcount
    if removed:
        vectors.bump(m.conn)  # other processes drop them from their cached matrices
    m.conn.execute(delete(C).where(C.c.document_id == document_id))
