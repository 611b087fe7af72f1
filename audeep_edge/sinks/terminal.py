"""Live view for a person watching ``listen`` in a terminal: one table row per window and one line per novel sound
(start, end) and saved clip, on stdout. ``listen`` uses it only when stdout is a terminal and neither ``-q`` nor
``--jsonl -`` is given; logs stay on stderr, so a pipe never gets these lines::

    time         seq  scene        conf    dBFS  novelty
    14:03:07      41  Rain          87%   -23.4     0.42
    14:03:08      42  Rain          88%   -23.1     0.97
    14:03:08          novel sound started (score 0.97)
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from audeep_edge.sinks.base import Payload

MAX_LABEL = 24  # characters of the scene column; longer labels are cut with "~"


def _clock(wall_time: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall_time))


class TerminalSink:
    """Prints windows as a compact live table.

    Parameters
    ----------
    info : the ``info`` payload: its ``labels`` size the scene column; a ``novelty_threshold`` adds a novelty column.
    stream : where to print (default: ``sys.stdout`` at the time of each line).
    """

    def __init__(self, info: Payload, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._novelty = info.get("novelty_threshold") is not None
        self._width = 5
        self.update_info(info)
        self._header = True
        self._writable = True

    def update_info(self, fields: Payload) -> None:
        """Widen the scene column for new labels (``enroll`` while running)."""
        labels = fields.get("labels") or []
        self._width = min(MAX_LABEL, max([self._width, *(len(str(label)) for label in labels)]))

    def publish_window(self, payload: Payload) -> None:
        if self._header:
            self._header = False
            self._print(f"{'time':<8}  {'seq':>6}  {'scene':<{self._width}}  {'conf':>4}  {'dBFS':>6}"
                        + (f"  {'novelty':>7}" if self._novelty else ""))
        label = payload.get("smoothed_label") or payload.get("label") or "-"
        if len(label) > self._width:
            label = label[:self._width - 1] + "~"
        confidence = payload.get("smoothed_confidence", payload.get("confidence"))
        dbfs, novelty = payload.get("dbfs"), payload.get("novelty")
        line = (f"{_clock(payload['wall_time'])}  {payload['seq']:>6}  {label:<{self._width}}  "
                f"{'-' if confidence is None else format(confidence * 100, '.0f') + '%':>4}  "
                f"{'-' if dbfs is None else format(dbfs, '.1f'):>6}")
        if self._novelty:
            line += f"  {'-' if novelty is None else format(novelty, '.2f'):>7}"
        self._print(line)

    def publish_health(self, payload: Payload) -> None:
        """Health is for machines (MQTT, JSONL): not shown."""

    def publish_event(self, payload: Payload) -> None:
        if payload.get("type") != "novel":  # a label change shows in the scene column
            return
        peak = payload.get("peak") or 0.0
        text = (f"novel sound started (score {peak:.2f})" if payload.get("state") == "start" else
                f"novel sound ended after {payload.get('duration') or 0.0:.1f} s (peak {peak:.2f})")
        self._print(f"{_clock(payload['wall_time'])}  {'':>6}  {text}")

    def publish_clip(self, payload: Payload) -> None:
        what = payload["reason"] if payload.get("label") is None else f"{payload['label']}"
        self._print(f"{_clock(payload['wall_time'])}  {'':>6}  clip saved: {payload['clip_id']}.{payload['format']} "
                    f"({payload['duration_s']:.1f} s, {what})")

    def close(self) -> None:
        self._writable = False

    def _print(self, line: str) -> None:
        if not self._writable:
            return
        stream = self._stream or sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # the terminal went away: the run goes on without the view
            self._writable = False
