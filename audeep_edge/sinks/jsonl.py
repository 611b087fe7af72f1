"""JSON Lines sink: one schema v1 payload per line, for files, pipes and ``jq``.

Each line is the MQTT payload with one extra leading key, ``"topic"``: the last MQTT topic level
(``"info"``, ``"window"``, ``"health"``, ``"event"`` or ``"clip"``; a clip line carries no audio: its file is
``<clips dir>/<clip_id>.<format>``)::

    {"topic":"window","schema_version":1,"device_id":"kitchen","seq":0,...}

so ``jq 'select(.topic == "window")'`` filters one kind. An ``info`` line comes first when ``info`` is
given, and again, updated, when the labels change (``enroll`` while running). Files are opened for appending
(a restart adds to the log); every line is flushed at once.

A file only ever holds whole lines: each line is one ``write`` to the file, and one that fails part-way (a full
disk) is cut off again. Writing then stops and :attr:`JsonlSink.failure` says so (``listen`` exits 2).
"""

from __future__ import annotations

import io
import logging
import os
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

    Attributes
    ----------
    failure : None, or one line saying why writing stopped (a full disk) and after how many lines.

    Raises
    ------
    ConfigError
        When the file cannot be opened for writing.
    """

    def __init__(self, target: str | Path = "-", info: Payload | None = None) -> None:
        self.target = str(target)
        self.failure: str | None = None
        self._stdout: TextIO | None = None
        self._file: io.FileIO | None = None
        self._lines = 0
        self._writable = True
        if self.target == "-":
            self._stdout = sys.stdout
        else:
            try:
                self._file = io.FileIO(self.target, "a")  # unbuffered: one write() per line
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

    def publish_clip(self, payload: Payload) -> None:
        self._write("clip", {**payload, "audio_b64": None})

    def close(self) -> None:
        self._writable = False
        if self._file is not None:
            self._file.close()  # unbuffered: nothing is left to write, so closing cannot fail on a full disk

    def _write(self, topic: str, payload: Payload) -> None:
        if not self._writable:
            return
        line = to_json({"topic": topic, **payload}) + "\n"
        try:
            if self._file is not None:
                self._append(line.encode())
            else:
                self._stdout.write(line)
                self._stdout.flush()
            self._lines += 1
        except BrokenPipeError:  # the reader went away (``| head``): stop writing, keep running
            log.warning("JSONL output %s was closed by its reader; no more lines are written", self.target)
            self._writable = False
        except OSError as exc:
            self.failure = (f"--jsonl {self.target}: {exc.strerror or exc} after {self._lines} lines; "
                            "the rest of the run was not written")
            log.warning("%s", self.failure)
            self._writable = False

    def _append(self, data: bytes) -> None:
        """Write one line to the file; a write that fails part-way is cut off, so the file ends in a whole line."""
        start = self._file.seek(0, os.SEEK_END)
        written = 0
        try:
            while written < len(data):
                written += self._file.write(data[written:])
        except OSError:
            if written:
                self._file.truncate(start)
            raise
