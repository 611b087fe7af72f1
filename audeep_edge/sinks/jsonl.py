"""JSON Lines sink: one schema v1 payload per line, for files, pipes and ``jq``.

Each line is the MQTT payload with one extra leading key, ``"topic"``: the last MQTT topic level
(``"info"``, ``"window"``, ``"health"`` or ``"event"``)::

    {"topic":"window","schema_version":1,"device_id":"kitchen","seq":0,...}

so ``jq 'select(.topic == "window")'`` filters one kind. An ``info`` line comes first when ``info`` is
given, and again, updated, when the labels change (``enroll`` while running). Files are opened for appending
(a restart adds to the log); every line is flushed at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from audeep_edge.errors import ConfigError
from audeep_edge.sinks.base import Payload
from audeep_edge.sinks.payload import SCHEMA_VERSION, to_json

log = logging.getLogger(__name__)


class JsonlSink:
    """Writes schema v1 payloads as JSON Lines to stdout (``"-"``) or a file.

    Parameters
    ----------
    target : ``"-"`` for stdout, or a file path (created, or appended to).
    info : optional ``info`` payload written as the first line (``schema_version`` added when missing).

    Raises
    ------
    ConfigError
        When the file cannot be opened for writing.
    """

    def __init__(self, target: str | Path = "-", info: Payload | None = None) -> None:
        self.target = str(target)
        self._stream: TextIO
        self._writable = True
        if self.target == "-":
            self._stream, self._owned = sys.stdout, False
        else:
            try:
                self._stream, self._owned = open(self.target, "a", encoding="utf-8"), True  # noqa: SIM115
            except OSError as exc:
                raise ConfigError(f"--jsonl {self.target}: cannot write ({exc.strerror})") from None
        self._info = None if info is None else {"schema_version": SCHEMA_VERSION, **info}
        if self._info is not None:
            self._write("info", self._info)

    def update_info(self, fields: Payload) -> None:
        """Write the ``info`` line again with ``fields`` merged in (the labels after an ``enroll``)."""
        self._info = {"schema_version": SCHEMA_VERSION, **(self._info or {}), **fields}
        self._write("info", self._info)

    def publish_window(self, payload: Payload) -> None:
        self._write("window", payload)

    def publish_health(self, payload: Payload) -> None:
        self._write("health", payload)

    def publish_event(self, payload: Payload) -> None:
        self._write("event", payload)

    def close(self) -> None:
        self._writable = False
        if self._owned:
            self._stream.close()

    def _write(self, topic: str, payload: Payload) -> None:
        if not self._writable:
            return
        try:
            self._stream.write(to_json({"topic": topic, **payload}) + "\n")
            self._stream.flush()
        except BrokenPipeError:  # the reader went away (``| head``): stop writing, keep running
            log.warning("JSONL output %s was closed by its reader; no more lines are written", self.target)
            self._writable = False
        except OSError as exc:
            log.error("JSONL output %s: %s; no more lines are written", self.target, exc.strerror)
            self._writable = False
