"""Runtime health: real-time factor, window latency, overruns, queue depth (schema v1 ``health`` payload)."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from audeep_edge.sinks.payload import SCHEMA_VERSION


def percentile_ms(latencies_s: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile of latencies given in seconds, in ms (None without samples)."""
    return round(float(np.percentile(latencies_s, q)) * 1000.0, 3) if latencies_s else None


class HealthMonitor:
    """Accumulates processing time, audio time and window latencies; reports and resets every interval.

    RTF = processing time / audio time (0.01 means 1 s of audio costs 10 ms). Latency = from the moment the
    block completing a window was captured to the moment every sink has taken the window's payload.

    Parameters
    ----------
    device_id : ``device_id`` of the payload.
    interval : seconds between reports.
    """

    def __init__(self, device_id: str, interval: float) -> None:
        self.device_id, self.interval = device_id, interval
        self.started = self._last = time.monotonic()
        self._busy = self._audio = 0.0
        self._latencies: list[float] = []

    def record_block(self, busy_s: float, audio_s: float) -> None:
        self._busy += busy_s
        self._audio += audio_s

    def record_window(self, latency_s: float) -> None:
        self._latencies.append(latency_s)

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval

    def report(self, *, overruns: int, queue_depth: int, dropped: int, buffered: int) -> dict:
        """The ``health`` payload for the interval since the last report; starts a new interval."""
        now = time.monotonic()
        payload = {"schema_version": SCHEMA_VERSION, "device_id": self.device_id, "wall_time": time.time(),
                   "uptime_s": round(now - self.started, 3),
                   "rtf": round(self._busy / self._audio, 6) if self._audio else None,
                   "latency_ms_p50": percentile_ms(self._latencies, 50),
                   "latency_ms_p99": percentile_ms(self._latencies, 99),
                   "overruns": overruns, "queue_depth": queue_depth, "dropped": dropped, "buffered": buffered}
        self._last, self._busy, self._audio, self._latencies = now, 0.0, 0.0, []
        return payload
