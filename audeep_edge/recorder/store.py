"""The history database: one interface (:class:`Store`), SQLite and PostgreSQL behind it.

:func:`open_store` picks the backend from a location: a file path or ``sqlite:///path`` (the default,
zero set-up) or ``postgresql://user@host/db`` (fleets; needs ``pip install 'audeep-edge[postgres]'``).

The tables are defined once in :mod:`audeep_edge.recorder.schema`, rendered for each backend's dialect.
Writes are idempotent (``ON CONFLICT DO NOTHING`` on the primary keys), so a message the broker
delivers twice is stored once. ``hours`` is kept in step in the same transaction (counts added for new windows;
recounted from ``windows`` for the hours of a batch that held repeats), so views of days read it instead of
every window. One connection writes (the recorder's thread), another reads (the dashboard's
requests); each is used under its own lock.

Why one module of ~330 lines: the queries are written once for both dialects; only the connection
and placeholder style differ (``sqlite.py``, ``postgres.py``).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audeep_edge.errors import ConfigError
from audeep_edge.recorder.records import Clip, DeviceUpdate, Event, Health, Record, Window
from audeep_edge.recorder.schema import TABLES, Dialect, create_statements

HOUR = 3600.0
NO_LABEL = ""  # the key in ``hours`` of windows without a label (a key column cannot hold NULL in both dialects)
SIZE_TARGET = 0.9  # retention by size trims to this fraction of the limit, so it does not run on every batch


class Store:
    """History of a fleet in an SQL database. Subclasses set the dialect and the connections.

    ``errors`` is the tuple of the driver's exception classes a caller may retry after (a full disk,
    a database that went away).
    """

    dialect: Dialect
    errors: tuple[type[Exception], ...] = ()
    placeholder = "?"
    bucket_sql = "CAST((wall_time - ?) / ? AS INTEGER)"  # wall_time >= origin: truncation is floor

    def __init__(self, writer, reader, location: str) -> None:
        self.location = location
        self._writer, self._reader = writer, reader
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()
        with self._write_lock, self._transaction(self._writer) as cur:
            for statement in create_statements(self.dialect):
                cur.execute(statement)

    # -- dialect -------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, conn) -> Iterator:
        raise NotImplementedError

    def used_bytes(self) -> int:
        """Bytes the history occupies (free space the database will reuse not counted)."""
        raise NotImplementedError

    def _reclaim(self) -> None:
        """Give the space of deleted rows back (after retention by size)."""
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    # -- writing -------------------------------------------------------------------------------------

    def write(self, records: list[Record]) -> None:
        """Store ``records`` in one transaction (repeats of stored ones are ignored)."""
        by_type: dict[type, list] = defaultdict(list)
        seen: dict[str, float] = {}
        for record in records:
            by_type[type(record)].append(record)
            if not isinstance(record, DeviceUpdate):
                seen[record.device_id] = max(seen.get(record.device_id, 0.0), record.wall_time)
        windows = by_type[Window]
        statements = [
            ("INSERT INTO events (device_id, wall_time, type, seq, label, payload) VALUES (?, ?, ?, ?, ?, ?) "
             "ON CONFLICT DO NOTHING",
             [(e.device_id, e.wall_time, e.type, e.seq, e.label, e.payload) for e in by_type[Event]]),
            ("INSERT INTO health (device_id, wall_time, payload) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
             [(h.device_id, h.wall_time, h.payload) for h in by_type[Health]]),
            ("INSERT INTO clips (device_id, clip_id, wall_time, duration_s, reason, label, score, seq, format, "
             "size, audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
             [(c.device_id, c.clip_id, c.wall_time, c.duration_s, c.reason, c.label, c.score, c.seq, c.format,
               len(c.audio), c.audio) for c in by_type[Clip]]),
            ("INSERT INTO devices (device_id, status, info, last_seen) VALUES (?, ?, ?, ?) "
             "ON CONFLICT (device_id) DO UPDATE SET status = COALESCE(excluded.status, devices.status), "
             "info = COALESCE(excluded.info, devices.info), last_seen = CASE WHEN excluded.last_seen > "
             "COALESCE(devices.last_seen, 0) THEN excluded.last_seen ELSE devices.last_seen END",
             [(u.device_id, u.status, u.info, u.seen) for u in by_type[DeviceUpdate]]
             + [(device, None, None, t) for device, t in seen.items()]),
        ]
        with self._write_lock, self._transaction(self._writer) as cur:
            if windows:
                cur.executemany(self._sql(
                    "INSERT INTO windows (device_id, wall_time, seq, label, raw_label, confidence, dbfs, novelty) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
                    [(w.device_id, w.wall_time, w.seq, w.label, None if w.raw_label == w.label else w.raw_label,
                      w.confidence, w.dbfs, w.novelty) for w in windows])
                if cur.rowcount == len(windows):  # all new: add them to their hours
                    self._add_to_hours(cur, windows)
                else:  # some were repeats: count those hours again
                    self._recount_hours(cur, {(w.device_id, w.wall_time // HOUR * HOUR) for w in windows})
            for statement, rows in statements:
                if rows:
                    cur.executemany(self._sql(statement), rows)

    def _add_to_hours(self, cur, windows: list[Window]) -> None:
        counts: dict[tuple, list] = {}
        for w in windows:
            entry = counts.setdefault((w.device_id, w.wall_time // HOUR * HOUR, w.label or NO_LABEL), [0, None])
            entry[0] += 1
            if w.novelty is not None and (entry[1] is None or w.novelty > entry[1]):
                entry[1] = w.novelty
        cur.executemany(self._sql(
            "INSERT INTO hours (device_id, hour, label, n, novelty) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id, hour, label) DO UPDATE SET n = hours.n + excluded.n, novelty = CASE WHEN "
            "excluded.novelty > COALESCE(hours.novelty, -1) THEN excluded.novelty ELSE hours.novelty END"),
            [(*key, n, novelty) for key, (n, novelty) in counts.items()])

    def _recount_hours(self, cur, hours: set[tuple[str, float]]) -> None:
        for device, hour in hours:
            cur.execute(self._sql("DELETE FROM hours WHERE device_id = ? AND hour = ?"), (device, hour))
            cur.execute(self._sql(
                "INSERT INTO hours (device_id, hour, label, n, novelty) SELECT device_id, ?, COALESCE(label, ?), "
                "COUNT(*), MAX(novelty) FROM windows WHERE device_id = ? AND wall_time >= ? AND wall_time < ? "
                "GROUP BY 1, 3"), (hour, NO_LABEL, device, hour, hour + HOUR))

    # -- reading -------------------------------------------------------------------------------------

    def _query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with self._read_lock, self._transaction(self._reader) as cur:
            return cur.execute(self._sql(statement), params).fetchall()

    def devices(self) -> list[dict]:
        """Every device on record: ``{"id", "status", "info" (dict or None), "last_seen"}``, by id."""
        rows = self._query("SELECT device_id, status, info, last_seen FROM devices ORDER BY device_id")
        return [{"id": d, "status": s or "unknown", "info": json.loads(i) if i else None, "last_seen": t}
                for d, s, i, t in rows]

    def history(self, device_id: str, start: float, end: float, bucket_s: float) -> dict:
        """The windows of ``device_id`` in ``[start, end)`` summarised for a timeline.

        Returns
        -------
        ``{"windows": n, "labels": {label: n}, "bucket_s": s, "buckets": [[t0, label, n, max novelty], ...],
        "hourly": [[hour start, {label: n}], ...]}``: ``buckets`` (only those with windows; ``label`` the most
        frequent scene in it) are ``bucket_s`` wide from ``start``; from 1 h on they are the clock hours
        (``bucket_s`` 3600), read from ``hours`` except the partial first and last hour. ``hourly`` is per clock
        hour (UTC hour boundaries). A window without a classifier head counts under the label ``null``.
        """
        origin = start // HOUR * HOUR
        if bucket_s < HOUR:
            buckets_from = start
            rows = self._scan(device_id, start, end, start, bucket_s)
        else:
            first, last = math.ceil(start / HOUR) * HOUR, end // HOUR * HOUR
            buckets_from, bucket_s = origin, HOUR
            if first >= last:
                rows = self._scan(device_id, start, end, origin, HOUR)
            else:
                rows = (self._scan(device_id, start, first, origin, HOUR)
                        + [(round((hour - origin) / HOUR),) * 2 + (label or None, n, novelty) for hour, label, n, novelty
                           in self._query("SELECT hour, label, n, novelty FROM hours WHERE device_id = ? AND "
                                          "hour >= ? AND hour < ?", (device_id, first, last))]
                        + self._scan(device_id, last, end, origin, HOUR))
        buckets: dict[int, list] = {}  # index -> [t0, label, n, max novelty, {label: n}]
        labels: dict[str | None, int] = defaultdict(int)
        hourly: dict[int, dict] = defaultdict(lambda: defaultdict(int))
        for index, hour, label, n, novelty in rows:
            labels[label] += n
            hourly[hour][label] += n
            bucket = buckets.setdefault(index, [buckets_from + index * bucket_s, None, 0, None, defaultdict(int)])
            bucket[2] += n
            bucket[4][label] += n
            if novelty is not None and (bucket[3] is None or novelty > bucket[3]):
                bucket[3] = novelty
        for bucket in buckets.values():
            bucket[1] = max(bucket[4].items(), key=lambda item: item[1])[0]
        return {"windows": sum(labels.values()), "labels": {_name(k): v for k, v in labels.items()},
                "bucket_s": bucket_s, "buckets": [b[:4] for _, b in sorted(buckets.items())],
                "hourly": [[origin + HOUR * i, {_name(k): v for k, v in counts.items()}]
                           for i, counts in sorted(hourly.items())]}

    def _scan(self, device_id: str, start: float, end: float, origin: float, bucket_s: float) -> list[tuple]:
        """``(bucket index from origin, clock hour index from origin's hour, label, n, max novelty)`` of the
        windows in [start, end), in one pass over them."""
        if end <= start:
            return []
        hours_from = origin // HOUR * HOUR
        return self._query(f"SELECT {self.bucket_sql}, {self.bucket_sql}, label, COUNT(*), MAX(novelty) FROM windows "
                           "WHERE device_id = ? AND wall_time >= ? AND wall_time < ? GROUP BY 1, 2, 3",
                           (origin, bucket_s, hours_from, HOUR, device_id, start, end))

    def events(self, start: float, end: float, device_id: str | None = None, types: tuple[str, ...] = (),
               label: str | None = None, limit: int = 200) -> list[dict]:
        """Events and clips in ``[start, end)``, newest first, at most ``limit``.

        Events: ``{"device_id", "wall_time", "type", "seq", "label", "event" (payload dict), "clip" (or None)}``
        with the clip that the same window triggered attached; clips that no event shares a window with
        appear as ``type`` ``"clip"``. ``types`` keeps only those types (``"clip"`` included); ``label`` only
        entries with that label.
        """
        def match(column: str) -> tuple[str, list]:
            sql, params = f" AND {column} >= ? AND {column} < ?", [start, end]
            if device_id is not None:
                sql, params = sql + " AND device_id = ?", params + [device_id]
            if label is not None:
                sql, params = sql + " AND label = ?", params + [label]
            return sql, params

        sql, params = match("wall_time")
        event_types = [t for t in types if t != "clip"]
        if types and not event_types:
            events = []
        else:  # the types filter goes into the query, so that LIMIT counts only wanted events
            only = f" AND type IN ({', '.join('?' * len(event_types))})" if event_types else ""
            events = self._query(f"SELECT device_id, wall_time, type, seq, label, payload FROM events WHERE 1 = 1"
                                 f"{sql}{only} ORDER BY wall_time DESC LIMIT ?", (*params, *event_types, limit))
        clips = self._query("SELECT device_id, clip_id, wall_time, duration_s, reason, label, score, seq, format, "
                            f"size FROM clips WHERE 1 = 1{sql} ORDER BY wall_time DESC LIMIT ?", (*params, limit))
        clip_of = {}
        for d, clip_id, t, duration, reason, clip_label, score, seq, fmt, size in clips:
            clip_of.setdefault((d, seq), {"clip_id": clip_id, "wall_time": t, "duration_s": duration,
                                          "reason": reason, "label": clip_label, "score": score, "format": fmt,
                                          "size": size, "device_id": d, "seq": seq})
        out = []
        for d, t, event_type, seq, event_label, payload in events:
            clip = clip_of.pop((d, seq), None) if seq >= 0 and event_type in ("novel", "label_change") else None
            out.append({"device_id": d, "wall_time": t, "type": event_type, "seq": seq, "label": event_label,
                        "event": json.loads(payload), "clip": clip})
        out += [{"device_id": c["device_id"], "wall_time": c["wall_time"], "type": "clip", "seq": c["seq"],
                 "label": c["label"], "event": None, "clip": c} for c in clip_of.values()]
        if types:
            out = [e for e in out if e["type"] in types]
        return sorted(out, key=lambda e: e["wall_time"], reverse=True)[:limit]

    def clip(self, device_id: str, clip_id: str) -> tuple[str, bytes] | None:
        """``(format, audio bytes)`` of a stored clip, or None."""
        rows = self._query("SELECT format, audio FROM clips WHERE device_id = ? AND clip_id = ?", (device_id, clip_id))
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    # -- retention -----------------------------------------------------------------------------------

    def delete_before(self, cutoff: float) -> int:
        """Delete everything time-stamped before ``cutoff`` (Unix s); returns the rows deleted."""
        deleted = 0
        with self._write_lock, self._transaction(self._writer) as cur:
            devices = [row[0] for row in cur.execute("SELECT device_id FROM devices").fetchall()]
            for table in TABLES:
                for device in devices:  # per device, so the (device_id, wall_time, ...) key serves the range
                    cur.execute(self._sql(f"DELETE FROM {table} WHERE device_id = ? AND wall_time < ?"),
                                (device, cutoff))
                    deleted += max(cur.rowcount, 0)
            hour = cutoff // HOUR * HOUR
            for device in devices:
                cur.execute(self._sql("DELETE FROM hours WHERE device_id = ? AND hour < ?"), (device, hour))
            if cutoff > hour:  # the hour the cut-off falls in lost some of its windows
                self._recount_hours(cur, {(device, hour) for device in devices})
        return deleted

    def time_span(self) -> tuple[float, float] | None:
        """(oldest, newest) window time over all devices, or None when there is no window."""
        spans = [self._query("SELECT MIN(wall_time), MAX(wall_time) FROM windows WHERE device_id = ?", (device,))[0]
                 for (device,) in self._query("SELECT device_id FROM devices")]  # per device: the key serves it
        spans = [span for span in spans if span[0] is not None]
        return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None

    def trim_to(self, max_bytes: int) -> int:
        """Delete the oldest history until it uses at most ``SIZE_TARGET * max_bytes``; returns rows deleted.

        Windows dominate and arrive at a steady rate, so the cut-off moves forward by the fraction to shed of
        the time covered, then again while still too large (a few rounds at most).
        """
        deleted = 0
        for _ in range(20):
            used, span = self.used_bytes(), self.time_span()
            if used <= max_bytes or span is None:
                break
            oldest, newest = span
            shed = 1.0 - SIZE_TARGET * max_bytes / used
            deleted += self.delete_before(oldest + max(shed * (newest - oldest), 1e-3))
            self._reclaim()
            if oldest >= newest:
                break
        return deleted

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
        with self._read_lock:
            self._reader.close()


def _name(label: str | None) -> str:
    """A label as a JSON key: windows without a label count under ``"null"``."""
    return "null" if label is None else label


def default_location() -> str:
    """``$XDG_DATA_HOME/audeep-edge/history.sqlite`` (``~/.local/share/...`` when unset)."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "audeep-edge" / "history.sqlite")


def open_store(location: str) -> Store:
    """The store at ``location``: a path or ``sqlite:///path`` (SQLite), or ``postgresql://...``.

    Raises
    ------
    ConfigError : the database cannot be opened or created there, or the PostgreSQL driver is missing.
    """
    if location.startswith(("postgresql://", "postgres://")):
        from audeep_edge.recorder.postgres import PostgresStore

        return PostgresStore.connect(location)
    from audeep_edge.recorder.sqlite import SqliteStore

    path = location[len("sqlite:///"):] if location.startswith("sqlite:///") else location
    if not path or "://" in location and not location.startswith("sqlite:///"):
        raise ConfigError(f"--db {location!r}: expected a file path, sqlite:///PATH or postgresql://...")
    return SqliteStore.connect(Path(path).expanduser())
