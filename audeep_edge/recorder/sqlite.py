"""SQLite backend: one file, WAL (readers never wait for the writer), incremental vacuum (deleted history
gives its pages back to the file system)."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audeep_edge.errors import ConfigError
from audeep_edge.recorder.store import Store

BUSY_TIMEOUT_S = 10.0


class SqliteStore(Store):
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

    def schema(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS windows (device_id TEXT NOT NULL, wall_time REAL NOT NULL, "
            "seq INTEGER NOT NULL, label TEXT, raw_label TEXT, confidence REAL, dbfs REAL, novelty REAL, "
            "PRIMARY KEY (device_id, wall_time, seq)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS events (device_id TEXT NOT NULL, wall_time REAL NOT NULL, type TEXT NOT NULL, "
            "seq INTEGER NOT NULL, label TEXT, payload TEXT NOT NULL, PRIMARY KEY (device_id, wall_time, type, seq))",
            "CREATE TABLE IF NOT EXISTS health (device_id TEXT NOT NULL, wall_time REAL NOT NULL, "
            "payload TEXT NOT NULL, PRIMARY KEY (device_id, wall_time))",
            "CREATE TABLE IF NOT EXISTS clips (device_id TEXT NOT NULL, clip_id TEXT NOT NULL, wall_time REAL NOT NULL, "
            "duration_s REAL NOT NULL, reason TEXT NOT NULL, label TEXT, score REAL, seq INTEGER NOT NULL, "
            "format TEXT NOT NULL, size INTEGER NOT NULL, audio BLOB NOT NULL, PRIMARY KEY (device_id, clip_id))",
            "CREATE INDEX IF NOT EXISTS clips_by_time ON clips (device_id, wall_time)",
            "CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, status TEXT, info TEXT, last_seen REAL)",
            "CREATE TABLE IF NOT EXISTS hours (device_id TEXT NOT NULL, hour REAL NOT NULL, label TEXT NOT NULL, "
            "n INTEGER NOT NULL, novelty REAL, PRIMARY KEY (device_id, hour, label)) WITHOUT ROWID",
        ]

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
