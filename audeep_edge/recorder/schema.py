"""The history database's tables, written once and rendered for each SQL dialect.

Tables (the same in both; times are Unix seconds, ``label`` is the scene a window showed)::

    windows (device_id, wall_time, seq | label, raw_label (NULL: the same as label), confidence, dbfs, novelty)
    events  (device_id, wall_time, type, seq | label, payload JSON)
    health  (device_id, wall_time | payload JSON)
    clips   (device_id, clip_id | wall_time, duration_s, reason, label, score, seq, format, size, audio)
    devices (device_id | status, info JSON, last_seen)
    hours   (device_id, hour, label | n, novelty)    windows per device, clock hour and label (label '' for none)

The columns left of ``|`` are the primary key. Every floating-point column is 8 bytes in both dialects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TABLES = ("windows", "events", "health", "clips")  # time-stamped tables that retention trims


@dataclass(frozen=True)
class Dialect:
    """How a dialect spells the column types and table options the schema uses."""

    double: str  # an 8-byte float
    bigint: str  # a 64-bit integer
    blob: str  # bytes
    without_rowid: str  # clustered on the primary key (SQLite's WITHOUT ROWID); empty where tables have no rowid


SQLITE = Dialect(double="REAL", bigint="INTEGER", blob="BLOB", without_rowid=" WITHOUT ROWID")
POSTGRESQL = Dialect(double="DOUBLE PRECISION", bigint="BIGINT", blob="BYTEA", without_rowid="")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS windows (device_id TEXT NOT NULL, wall_time {double} NOT NULL, "
    "seq {bigint} NOT NULL, label TEXT, raw_label TEXT, confidence {double}, dbfs {double}, novelty {double}, "
    "PRIMARY KEY (device_id, wall_time, seq)){without_rowid}",
    "CREATE TABLE IF NOT EXISTS events (device_id TEXT NOT NULL, wall_time {double} NOT NULL, type TEXT NOT NULL, "
    "seq {bigint} NOT NULL, label TEXT, payload TEXT NOT NULL, PRIMARY KEY (device_id, wall_time, type, seq))",
    "CREATE TABLE IF NOT EXISTS health (device_id TEXT NOT NULL, wall_time {double} NOT NULL, "
    "payload TEXT NOT NULL, PRIMARY KEY (device_id, wall_time))",
    "CREATE TABLE IF NOT EXISTS clips (device_id TEXT NOT NULL, clip_id TEXT NOT NULL, wall_time {double} NOT NULL, "
    "duration_s {double} NOT NULL, reason TEXT NOT NULL, label TEXT, score {double}, seq {bigint} NOT NULL, "
    "format TEXT NOT NULL, size INTEGER NOT NULL, audio {blob} NOT NULL, PRIMARY KEY (device_id, clip_id))",
    "CREATE INDEX IF NOT EXISTS clips_by_time ON clips (device_id, wall_time)",
    "CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, status TEXT, info TEXT, last_seen {double})",
    "CREATE TABLE IF NOT EXISTS hours (device_id TEXT NOT NULL, hour {double} NOT NULL, label TEXT NOT NULL, "
    "n INTEGER NOT NULL, novelty {double}, PRIMARY KEY (device_id, hour, label)){without_rowid}",
)


def create_statements(dialect: Dialect) -> list[str]:
    """The ``CREATE ... IF NOT EXISTS`` statements of every table and index, in ``dialect``."""
    return [statement.format(**dataclasses.asdict(dialect)) for statement in SCHEMA]
