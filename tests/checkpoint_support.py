"""Helpers the checkpoint tests share: a whole-machine backup (database, ledger key, witness,
signing key) taken and put back for real, on either engine."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from memwarden import Settings
from memwarden.db.engine import sqlite_path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOME_FILES = ("ledger.key", "ledger.head", "checkpoint.key")


def _pg_schema(url: str) -> str:
    options = parse_qs(urlparse(url).query)["options"][0]
    return options.split("search_path=")[1]


@dataclass
class Backup:
    """Everything a careless restore would put back: the database and the files beside it."""

    settings: Settings
    folder: Path

    @classmethod
    def take(cls, settings: Settings, folder: Path) -> Backup:
        """Take it while no memwarden holds the database open."""
        folder.mkdir(parents=True)
        for name in HOME_FILES:
            shutil.copy2(settings.home / name, folder / name)
        path = sqlite_path(settings.resolved_database_url)
        if path is not None:
            shutil.copy2(path, folder / "memwarden.db")
        else:
            subprocess.run(
                [str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                 "-n", _pg_schema(settings.resolved_database_url), "-Fc",
                 "-f", str(folder / "pg.dump")],
                check=True, capture_output=True,
            )  # fmt: skip
        return cls(settings, folder)

    def restore(self) -> None:
        for name in HOME_FILES:
            shutil.copy2(self.folder / name, self.settings.home / name)
        path = sqlite_path(self.settings.resolved_database_url)
        if path is not None:
            for leftover in (
                path.with_name(path.name + "-wal"),
                path.with_name(path.name + "-shm"),
            ):
                leftover.unlink(missing_ok=True)
            shutil.copy2(self.folder / "memwarden.db", path)
            return
        schema = _pg_schema(self.settings.resolved_database_url)
        subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
             "-c", f'DROP SCHEMA "{schema}" CASCADE'],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [str(PG_BIN / "pg_restore"), "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
             str(self.folder / "pg.dump")],
            check=True, capture_output=True,
        )  # fmt: skip
