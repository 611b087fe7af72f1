"""What the dashboard remembers of one device: bounded history of windows, events, novelty and embeddings.

A :class:`DeviceState` is guarded by its :class:`~audeep_edge.dashboard.mqtt_state.FleetState`'s lock and
turns into the page's wire form, in full or as the delta since the last one (:meth:`DeviceState.as_dict`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from audeep_edge.dashboard.projection import PcaProjector
from audeep_edge.mqtt.messages import number

RECENT_KEYS = 256  # windows remembered per device to recognise repeats


@dataclass(frozen=True)
class HistoryLimits:
    """How much the dashboard remembers per device.

    history_s : seconds of windows kept for the timeline and top-k plots.
    max_windows : cap on windows kept, whatever their age (bounds memory for fast devices).
    max_embeddings : recent embeddings kept for the embedding map.
    max_events : recent events kept.
    max_novel : ``novel`` event edges kept for the novelty plot (also only those of the last ``history_s``).
    projection_interval_s : least time between two refits of a device's embedding map.
    max_devices : devices kept; a new one replaces the device whose last message is the oldest.
    """

    history_s: float = 300.0
    max_windows: int = 1200
    max_embeddings: int = 150
    max_events: int = 20
    max_novel: int = 50
    projection_interval_s: float = 2.0
    max_devices: int = 100


@dataclass
class DeviceState:
    """Everything the dashboard knows about one device. Guarded by the owning FleetState's lock."""

    device_id: str
    limits: HistoryLimits
    status: str = "unknown"  # online | offline | unknown
    info: dict | None = None
    health: dict | None = None
    last_seen: float | None = None
    last_seq: int | None = None
    last_audio_time: float | None = None
    hop_estimate: float | None = None  # audio_time step between the last two consecutive windows
    lost: int = 0
    repeats: int = 0
    recent_keys: deque = field(default_factory=lambda: deque(maxlen=RECENT_KEYS))  # (seq, wall_time)
    next_n: int = 0
    sent_n: int = 0  # windows with n < sent_n were already part of a delta
    windows: deque = field(default_factory=deque)
    events: deque = field(default_factory=deque)
    new_events: list = field(default_factory=list)
    novel: deque = field(default_factory=deque)  # {"state", "t0", "t", "peak"}: novel event edges (see add_novel)
    new_novel: list = field(default_factory=list)
    embeddings: deque = field(default_factory=deque)  # (vector (D,) float16, label)
    embeddings_changed: bool = False
    projected_at: float = -math.inf
    projector: PcaProjector = field(default_factory=PcaProjector)
    map_points: list = field(default_factory=list)  # [[x, y, label], ...]
    changed: set = field(default_factory=set)  # names of scalar fields changed since the last delta

    def add_window(self, window: dict, embedding: np.ndarray | None, rx: float) -> bool:
        """Append a window; False (and nothing changes) when it repeats one already received.

        Publishers may resend windows around a reconnect (see docs/mqtt.md), so a (seq, wall_time)
        seen before is a repeat; a lower seq with a new wall_time is a restarted device, not a loss. A higher
        seq counts the windows between as lost only when ``audio_time`` advanced by as many hops: a forged or
        foreign window (seq 999999) does not turn into a million lost windows, it restarts the count.
        """
        seq, key = window["seq"], (window["seq"], window.pop("wall_time"))
        audio_time = window.pop("audio_time")
        if seq is not None:
            if key in self.recent_keys:
                self.repeats += 1
                self.changed.add("repeats")
                return False
            self.recent_keys.append(key)
            if self.last_seq is not None and seq > self.last_seq:
                step = None if None in (audio_time, self.last_audio_time) else audio_time - self.last_audio_time
                if seq == self.last_seq + 1:
                    self.hop_estimate = step if step and step > 0 else self.hop_estimate
                elif self._audio_agrees(seq - self.last_seq, step):
                    self.lost += seq - self.last_seq - 1
                    self.changed.add("lost")
            self.last_seq, self.last_audio_time = seq, audio_time
        window["n"] = self.next_n
        self.next_n += 1
        self.windows.append(window)
        while len(self.windows) > self.limits.max_windows or self.windows[0]["t"] < rx - self.limits.history_s:
            self.windows.popleft()
        if embedding is not None:
            if self.embeddings and self.embeddings[-1][0].shape != embedding.shape:
                self.reset_embeddings()
            # float16 halves the memory; plenty for a 2-D map.
            self.embeddings.append((embedding.astype(np.float16), window["label"]))
            while len(self.embeddings) > self.limits.max_embeddings:
                self.embeddings.popleft()
            self.embeddings_changed = True
        return True

    def _audio_agrees(self, windows: int, step: float | None) -> bool:
        """Whether ``audio_time`` advanced by ``windows`` hops (half a hop of slack); the hop is the device's
        ``info.hop_seconds``, else the step between its last two consecutive windows."""
        hop = number((self.info or {}).get("hop_seconds")) or self.hop_estimate
        return step is not None and hop is not None and hop > 0 and abs(step - windows * hop) <= 0.5 * hop

    def add_novel(self, event: dict, rx: float) -> None:
        """Keep a ``novel`` event edge for the novelty plot: ``t`` when it came, ``t0`` when its high scores began
        (``duration`` earlier). Edges older than the history go, except the newest (an event may still be on)."""
        duration = number(event.get("duration"))
        edge = {"state": event.get("state"), "t0": rx - max(0.0, duration or 0.0), "t": rx,
                "peak": rounded(number(event.get("peak")), 4)}
        self.novel.append(edge)
        self.new_novel.append(edge)
        while len(self.novel) > 1 and (len(self.novel) > self.limits.max_novel
                                       or self.novel[0]["t"] < rx - self.limits.history_s):
            self.novel.popleft()

    def reset_embeddings(self) -> None:
        self.embeddings.clear()
        self.projector.reset()
        self.map_points = []
        self.embeddings_changed = False
        self.changed.add("map")

    def as_dict(self, full: bool) -> dict:
        """Wire form: everything (``full``) or only what changed since the last delta."""
        out: dict = {"id": self.device_id}
        fields = ("status", "info", "health", "lost", "repeats", "map")
        for name in fields if full else sorted(self.changed):
            out[name] = {"points": self.map_points} if name == "map" else getattr(self, name)
        if full:
            out["windows"] = list(self.windows)
            out["events"] = list(self.events)
            out["novel"] = list(self.novel)
        else:
            unsent = min(self.next_n - self.sent_n, len(self.windows))
            out["windows"] = [self.windows[i] for i in range(len(self.windows) - unsent, len(self.windows))]
            out["events"] = self.new_events
            out["novel"] = self.new_novel
        out["last_seen"] = self.last_seen
        return out


def rounded(value: float | None, digits: int) -> float | None:
    """``value`` rounded to ``digits``, None staying None."""
    return None if value is None else round(value, digits)
