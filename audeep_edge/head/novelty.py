"""Novelty events: per-window novelty scores (percentiles of a :class:`~audeep_edge.head.baseline.Baseline`) in,
``novel`` events out.

:class:`NoveltyDetector` turns per-window scores into ``novel`` events (threshold held for a minimum duration,
released with hysteresis). numpy only: the device never imports scikit-learn or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from audeep_edge.errors import ConfigError


@dataclass(frozen=True)
class NoveltyConfig:
    """When per-window novelty scores become a ``novel`` event.

    Parameters
    ----------
    threshold : an event starts once every score stays >= threshold for ``min_duration`` seconds.
    release : an active event ends at the first score below ``release`` (hysteresis; <= threshold).
    min_duration : seconds of audio time from the first to the current high window (0: the first one fires).
    """

    threshold: float = 0.95
    release: float = 0.8
    min_duration: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"--novelty-threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.release <= self.threshold:
            raise ConfigError(f"--novelty-release must be in [0, threshold {self.threshold}], got {self.release}")
        if self.min_duration < 0:
            raise ConfigError(f"--novelty-min-duration must be >= 0 seconds, got {self.min_duration}")


@dataclass(frozen=True)
class NoveltyEvent:
    """A ``novel`` event edge: ``state`` is ``start`` or ``end``; times are audio seconds.

    ``start_time`` is the first high window, ``duration`` runs from it to ``audio_time``, ``peak`` is the highest
    score so far.
    """

    state: str
    audio_time: float
    start_time: float
    duration: float
    peak: float

    def payload(self) -> dict:
        """Fields for the MQTT ``event`` message (``type: "novel"`` is added by the sink)."""
        return {"state": self.state, "audio_time": round(self.audio_time, 3), "start_time": round(self.start_time, 3),
                "duration": round(self.duration, 3), "peak": round(self.peak, 4)}


class NoveltyDetector:
    """Per-window novelty scores in, ``start``/``end`` events out (at most one event per window)."""

    def __init__(self, config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the current run of high scores (a source restarted)."""
        self.active = False
        self._since: float | None = None
        self._peak = 0.0

    def update(self, audio_time: float, score: float) -> NoveltyEvent | None:
        """Feed one window's score (NaN counts as low); return the event this window causes, if any."""
        cfg = self.config
        high = bool(score >= cfg.threshold)
        if self.active:
            if score >= cfg.release:
                self._peak = max(self._peak, float(score))
                return None
            event = NoveltyEvent("end", audio_time, self._since, audio_time - self._since, self._peak)
            self.reset()
            return event
        if not high:
            self._since, self._peak = None, 0.0
            return None
        if self._since is None:
            self._since = audio_time
        self._peak = max(self._peak, float(score))
        if audio_time - self._since >= cfg.min_duration:
            self.active = True
            return NoveltyEvent("start", audio_time, self._since, audio_time - self._since, self._peak)
        return None
