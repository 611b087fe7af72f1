"""PostgreSQL backend (psycopg 3, ``pip install 'audeep-edge[postgres]'``), for fleets whose history outgrows
one machine's SQLite file or that several dashboards read."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Iterator

from audeep_edge.errors import ConfigError
from audeep_edge.recorder.schema import POSTGRESQL, TABLES
from audeep_edge.recorder.store import Store

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


class PostgresStore(Store):
    dialect = POSTGRESQL
    placeholder = "%s"
    bucket_sql = "CAST(FLOOR((wall_time - %s) / %s) AS BIGINT)"

    @classmethod
    def connect(cls, url: str) -> "PostgresStore":
        """Connect twice (writer, reader) to the database at ``url`` and create the tables when missing.

        Raises
        ------
        ConfigError : psycopg is not installed, or the server refuses or cannot be reached.
        """
        try:
            import psycopg
        except ImportError:
            raise ConfigError("--db postgresql://… needs psycopg: pip install 'audeep-edge[postgres]'") from None
        cls.errors = (psycopg.Error,)
        try:
            writer, reader = (psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                              for _ in range(2))
            return cls(writer, reader, redact(url))
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--db {redact(url)}: {message}") from None

    def __init__(self, writer, reader, location: str) -> None:
        super().__init__(writer, reader, location)
        self._widen_real_columns()

    def _widen_real_columns(self) -> None:
        """A history written before every float column was 8 bytes has 4-byte REAL columns (7 digits: a novelty
        score rounded, a Unix time to minutes): widen them in place. Values already rounded stay so."""
        from psycopg import sql

        rows = self._writer.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND data_type = 'real' AND table_name = ANY(%s)", [[*TABLES, "hours", "devices"]]).fetchall()
        for table, column in rows:
            log.info("%s: widening %s.%s from REAL to DOUBLE PRECISION", self.location, table, column)
            self._writer.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE DOUBLE PRECISION").format(
                sql.Identifier(table), sql.Identifier(column)))

    @contextmanager
    def _transaction(self, conn) -> Iterator:
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    def used_bytes(self) -> int:
        names = ", ".join(f"'{table}'" for table in (*TABLES, "hours", "devices"))
        return int(self._query(f"SELECT SUM(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY[{names}]) AS t")[0][0])

    def _reclaim(self) -> None:
        # Plain VACUUM only marks the space reusable; FULL rewrites the tables (locking them meanwhile), so the
        # size on disk shrinks and the next check does not trim again. Retention by size runs rarely.
        with self._write_lock:
            for table in (*TABLES, "hours"):
                self._writer.execute(f"VACUUM FULL {table}")
