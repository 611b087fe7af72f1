"""The streaming loop: source blocks -> windows -> payloads -> sinks, with health reports and a clean end."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from audeep_edge.pipeline.analysis import WindowAnalyzer
from audeep_edge.pipeline.clips import ClipSaver
from audeep_edge.pipeline.health import HealthMonitor
from audeep_edge.pipeline.windows import BlockCheck, Windower
from audeep_edge.sinks.base import Sink
from audeep_edge.sources.base import Source

log = logging.getLogger(__name__)


LATENCIES_KEPT = 10_000  # a listen runs for months: keep the recent latencies, not all of them


@dataclass
class RunSummary:
    """What a run did: windows published, audio consumed (s), processing time (s), wall time (s), the latency
    (s) of the last ``LATENCIES_KEPT`` windows and the source's overruns."""

    windows: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    wall_seconds: float = 0.0
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))
    overruns: int = 0

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time per second of audio."""
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else float("nan")


def label_fields(trained: list[str], labels: list[str]) -> dict:
    """The ``labels`` and ``enrolled_labels`` fields of ``info``: ``labels`` lists the trained labels, then the
    enrolled ones (the order of ``Adaptation.labels`` and of the probabilities)."""
    return {"labels": list(labels), "enrolled_labels": list(labels[len(trained):])}


def _sink_counter(sinks: list[Sink], name: str) -> int:
    """Sum of a sink statistic (``dropped``/``buffered``) over the sinks that report ``stats()``."""
    return sum(int(sink.stats().get(name, 0)) for sink in sinks if hasattr(sink, "stats"))


class Pipeline:
    """Runs one source to its end (or ``stop``/``max_windows``), publishing every window and periodic health.

    The loop runs in the calling thread. Live sources capture in their own thread and hand blocks over
    through a bounded queue, so a slow window never stalls capture. The events a window causes
    (``label_change`` of the smoothed label, ``novel``) follow its ``window`` message. When the labels change
    (``enroll`` while running), sinks with ``update_info`` get the new label fields before the first window
    that uses them.

    Parameters
    ----------
    source : where audio comes from.
    windower : front end and window timing for this source.
    analyzer : model + head + payload.
    sinks : where payloads go (all of them get every payload).
    health_interval : seconds between ``health`` payloads (one more is sent at the end).
    max_windows : stop after this many windows (None: run until the source ends or ``stop``).
    clips : saves event clips from the source's audio (``listen --clips``); their ``clip`` payloads go to every
        sink as they are written, the last ones at the end of the run.
    """

    def __init__(self, source: Source, windower: Windower, analyzer: WindowAnalyzer, sinks: list[Sink], *,
                 health_interval: float = 10.0, max_windows: int | None = None,
                 clips: ClipSaver | None = None) -> None:
        self.source, self.windower, self.analyzer, self.sinks = source, windower, analyzer, sinks
        self.max_windows, self.clips = max_windows, clips
        self.health = HealthMonitor(analyzer.device_id, health_interval)

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        """Stream until the audio ends, ``stop`` is set or ``max_windows`` windows were published."""
        stop = stop or threading.Event()
        summary, started = RunSummary(), time.monotonic()
        blocks, check = self.source.blocks(stop), BlockCheck(self.source.name)
        try:
            for block in blocks:
                t0 = time.monotonic()
                check(block.samples)
                if self.clips is not None:
                    self.clips.push(block.samples)
                done = self._publish(self.windower.push(block.samples, block.captured), summary)
                if self.clips is not None:
                    self._publish_clips(self.clips.ready())
                busy = time.monotonic() - t0
                audio = block.samples.shape[0] / self.source.sample_rate
                summary.busy_seconds += busy
                summary.audio_seconds += audio
                self.health.record_block(busy, audio)
                if self.health.due():
                    self._publish_health()
                if done:
                    break
            else:
                if not stop.is_set():
                    self._publish(self.windower.flush(time.monotonic()), summary)
        finally:
            blocks.close()  # releases a live device even when the loop ends early
        if self.clips is not None:
            self._publish_clips(self.clips.close())
        self._publish_health()
        summary.wall_seconds = time.monotonic() - started
        summary.overruns = self.source.overruns
        if summary.windows == 0 and not stop.is_set():
            log.warning("no window was analysed: %.2f s of audio is shorter than one %.2f s window",
                        self.windower.audio_seconds, self.windower.framing.window_seconds)
        return summary

    def _publish(self, windows: list, summary: RunSummary) -> bool:
        """Analyse and publish ``windows``; True once ``max_windows`` is reached."""
        for window in windows:
            analysis = self.analyzer(window)
            if analysis.labels is not None:
                fields = label_fields(self.analyzer.labels, analysis.labels)
                for sink in self.sinks:
                    if hasattr(sink, "update_info"):
                        sink.update_info(fields)
            for sink in self.sinks:
                sink.publish_window(analysis.payload)
                for event in analysis.events:
                    sink.publish_event(event)
            if self.clips is not None:
                self.clips.observe(analysis.payload, analysis.events)
            latency = time.monotonic() - window.captured
            summary.latencies.append(latency)
            self.health.record_window(latency)
            summary.windows += 1
            if self.max_windows is not None and summary.windows >= self.max_windows:
                return True
        return False

    def _publish_clips(self, clips: list[dict]) -> None:
        for clip in clips:
            for sink in self.sinks:
                sink.publish_clip(clip)

    def _publish_health(self) -> None:
        payload = self.health.report(overruns=self.source.overruns, queue_depth=self.source.queue_depth,
                                     dropped=_sink_counter(self.sinks, "dropped"),
                                     buffered=_sink_counter(self.sinks, "buffered"))
        for sink in self.sinks:
            sink.publish_health(payload)
