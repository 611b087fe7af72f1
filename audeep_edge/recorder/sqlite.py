"""SQLite backend: one file, WAL (readers never wait for the writer), incremental vacuum (deleted history
gives its pages back to the file system)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audeep_edge.errors import ConfigError
from audeep_edge.recorder.schema import SQLITE
from audeep_edge.recorder.store import Store

BUSY_TIMEOUT_S = 10.0


class SqliteStore(Store):
    dialect = SQLITE
    errors = (sqlite3.Error,)

    @classmethod
    def connect(cls, path: Path) -> "SqliteStore":
        """Open (creating it and its directory when missing) the history file at ``path``.

        Raises
        ------
        ConfigError : the file cannot be created, opened or is not an SQLite database.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer, reader = (sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                              check_same_thread=False) for _ in range(2))
            # auto_vacuum takes effect only before the first table exists; WAL persists in the file.
            writer.execute("PRAGMA auto_vacuum = INCREMENTAL")
            writer.execute("PRAGMA journal_mode = WAL")
            for conn in (writer, reader):
                conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a power cut loses at most the last commit
            return cls(writer, reader, str(path))
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"--db {path}: cannot open an SQLite database there ({exc})") from None

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if conn is self._writer else "BEGIN")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def used_bytes(self) -> int:
        (pages,), (free,), (size,) = (self._query(f"PRAGMA {name}")[0]
                                      for name in ("page_count", "freelist_count", "page_size"))
        return (pages - free) * size

    def _reclaim(self) -> None:
        with self._write_lock:
            self._writer.execute("PRAGMA incremental_vacuum")
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
