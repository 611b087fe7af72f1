"""Fleet state built from MQTT schema v1 messages: bounded per-device history, drained as deltas.

:class:`FleetState` is fed by the MQTT thread (:meth:`FleetState.handle_message`) and read by the
dashboard's push thread, which sends browsers one full :meth:`~FleetState.snapshot` on connect and
then what changed (:meth:`~FleetState.collect_update`). Windows carry a per-device counter ``n`` so a
browser can drop the few windows that appear both in its snapshot and in the next delta.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from audeep_edge.dashboard.projection import PcaProjector, decode_embedding

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TOPIC_KINDS = ("status", "info", "window", "health", "event")
UNSUPPORTED = object()  # a payload of another schema_version
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
    """

    history_s: float = 300.0
    max_windows: int = 1200
    max_embeddings: int = 150
    max_events: int = 20
    max_novel: int = 50
    projection_interval_s: float = 2.0


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
        seen before is a repeat; a lower seq with a new wall_time is a restarted device, not a loss.
        """
        seq, key = window["seq"], (window["seq"], window.pop("wall_time"))
        if seq is not None:
            if key in self.recent_keys:
                self.repeats += 1
                self.changed.add("repeats")
                return False
            self.recent_keys.append(key)
            if self.last_seq is not None and seq > self.last_seq + 1:
                self.lost += seq - self.last_seq - 1
                self.changed.add("lost")
            self.last_seq = seq
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

    def add_novel(self, event: dict, rx: float) -> None:
        """Keep a ``novel`` event edge for the novelty plot: ``t`` when it came, ``t0`` when its high scores began
        (``duration`` earlier). Edges older than the history go, except the newest (an event may still be on)."""
        duration = _number(event.get("duration"))
        edge = {"state": event.get("state"), "t0": rx - max(0.0, duration or 0.0), "t": rx,
                "peak": _round(_number(event.get("peak")), 4)}
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


class FleetState:
    """Thread-safe state of every device seen under ``<prefix>/+/...`` plus the broker link."""

    def __init__(self, limits: HistoryLimits | None = None, broker: str = "") -> None:
        self.limits = limits or HistoryLimits()
        self._lock = threading.Lock()
        self._devices: dict[str, DeviceState] = {}
        self._broker = {"url": broker, "connected": False, "error": "connecting", "since": time.time()}
        self._broker_changed = True
        self._messages = 0
        self._bad_messages = 0
        self._warned_schema: set[str] = set()
        self._rate = 0.0
        self._rate_mark = (time.monotonic(), 0)

    # -- written by the MQTT thread -------------------------------------------------------------

    def set_broker(self, connected: bool, error: str | None = None) -> None:
        """Record the broker link state (``error`` says why it is down, shown on the page)."""
        with self._lock:
            self._broker.update(connected=connected, error=error, since=time.time())
            self._broker_changed = True

    def handle_message(self, device_id: str, kind: str, payload: bytes, rx: float | None = None) -> bool:
        """Fold one message into the state.

        Parameters
        ----------
        device_id : the ``<device_id>`` part of the topic.
        kind : the last topic level, one of ``TOPIC_KINDS``.
        payload : raw MQTT payload.
        rx : reception time (Unix seconds); now when omitted.

        Returns
        -------
        True when the message was used, False when it was malformed or repeated a window, and ignored.
        """
        rx = time.time() if rx is None else rx
        parsed = _parse(kind, payload)
        with self._lock:
            self._messages += 1
            if parsed is None or parsed is UNSUPPORTED:
                self._bad_messages += 1
                if parsed is UNSUPPORTED and device_id not in self._warned_schema:
                    self._warned_schema.add(device_id)
                    log.warning("device %s publishes another schema_version; this dashboard reads version %d",
                                device_id, SCHEMA_VERSION)
                return False
            device = self._devices.get(device_id)
            if device is None:
                if kind == "status" and parsed == "unknown":
                    return True  # a cleared retained status for a device we never saw
                device = self._devices[device_id] = DeviceState(device_id, self.limits)
            if kind != "status":
                device.last_seen = rx
            if kind == "status":
                device.status = parsed
                device.changed.add("status")
            elif kind == "info":
                if device.info and device.info.get("embedding_size") != parsed.get("embedding_size"):
                    device.reset_embeddings()
                device.info = parsed
                device.changed.add("info")
            elif kind == "health":
                device.health = {**parsed, "rx": rx}
                device.changed.add("health")
            elif kind == "event":
                event = {**parsed, "rx": rx}
                device.events.append(event)
                device.new_events.append(event)
                while len(device.events) > self.limits.max_events:
                    device.events.popleft()
                if parsed["type"] == "novel" and parsed.get("state") in ("start", "end"):
                    device.add_novel(parsed, rx)
            else:
                window, embedding = parsed
                window["t"] = rx
                return device.add_window(window, embedding, rx)
            return True

    # -- read by the push thread ----------------------------------------------------------------

    def refresh_maps(self, now: float) -> None:
        """Refit the embedding map of each device that got new embeddings (at most once per interval)."""
        due = []
        with self._lock:
            for device in self._devices.values():
                if device.embeddings_changed and now - device.projected_at >= self.limits.projection_interval_s:
                    device.embeddings_changed = False
                    device.projected_at = now
                    vectors = np.stack([v for v, _ in device.embeddings])
                    due.append((device, vectors, [label for _, label in device.embeddings]))
        # The SVD runs outside the lock so the MQTT thread never waits for it; only this thread
        # touches a device's projector.
        for device, vectors, labels in due:
            points = device.projector.project(vectors)
            with self._lock:
                device.map_points = [[round(float(x), 3), round(float(y), 3), label]
                                     for (x, y), label in zip(points, labels)]
                device.changed.add("map")

    def snapshot(self, now: float | None = None) -> dict:
        """Everything, for a browser that just connected."""
        now = time.time() if now is None else now
        with self._lock:
            devices = [d.as_dict(full=True) for d in self._sorted()]
            return {"type": "snapshot", "now": now, "history_s": self.limits.history_s,
                    "broker": dict(self._broker), "stats": self._stats(), "devices": devices}

    def collect_update(self, now: float | None = None) -> dict:
        """What changed since the previous call (devices with no change are left out)."""
        now = time.time() if now is None else now
        with self._lock:
            devices = []
            for device in self._sorted():
                if device.changed or device.new_events or device.next_n > device.sent_n:
                    devices.append(device.as_dict(full=False))
                    device.changed.clear()
                    device.new_events = []
                    device.new_novel = []
                    device.sent_n = device.next_n
            update = {"type": "update", "now": now, "stats": self._stats(), "devices": devices}
            if self._broker_changed:
                update["broker"] = dict(self._broker)
                self._broker_changed = False
            return update

    def stats(self) -> dict:
        """Message counters: total, malformed, and the recent rate (messages per second)."""
        with self._lock:
            return self._stats()

    def _stats(self) -> dict:
        mark_t, mark_n = self._rate_mark
        t = time.monotonic()
        if t - mark_t >= 1.0:
            self._rate = (self._messages - mark_n) / (t - mark_t)
            self._rate_mark = (t, self._messages)
        return {"messages": self._messages, "bad_messages": self._bad_messages,
                "messages_per_s": round(self._rate, 1), "devices": len(self._devices)}

    def _sorted(self) -> list[DeviceState]:
        return [self._devices[k] for k in sorted(self._devices)]


def _parse(kind: str, payload: bytes):
    """Validated content of one message, or None when malformed.

    status -> "online" | "offline" | "unknown" (an empty payload clears a retained status);
    info / health / event -> dict (info with ``labels`` and ``enrolled_labels`` lists of strings);
    window -> (compact window dict, embedding or None);
    UNSUPPORTED for another schema_version.
    """
    if kind == "status":
        text = payload.decode("utf-8", "replace").strip()
        return text if text in ("online", "offline") else "unknown" if not text else None
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        return UNSUPPORTED
    if kind == "window":
        return _parse_window(data)
    if kind == "info":
        # enrolled_labels came after schema v1's first devices: without it, every label is the bundle's.
        for key in ("labels", "enrolled_labels"):
            value = data.get(key)
            data[key] = [x for x in value if isinstance(x, str)] if isinstance(value, list) else []
    if kind == "event" and not isinstance(data.get("type"), str):
        return None
    return data


def _parse_window(data: dict) -> tuple[dict, np.ndarray | None] | None:
    label, confidence = data.get("label"), _number(data.get("confidence"))
    if not (label is None or isinstance(label, str)):  # None: an encoder without a classifier head
        return None
    top_k = []
    for entry in data.get("top_k") or []:
        p = _number(entry.get("p")) if isinstance(entry, dict) else None
        if p is not None and isinstance(entry.get("label"), str):
            top_k.append([entry["label"], round(p, 4)])
    # The scene shown is the smoothed label when the device smooths; its confidence is the raw
    # probability of that label (from top_k when the raw winner differs).
    smoothed = data.get("smoothed_label")
    shown = smoothed if isinstance(smoothed, str) else label
    shown_p = confidence if shown == label else dict(top_k).get(shown)
    seq = data.get("seq")
    window = {
        "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        "wall_time": _number(data.get("wall_time")),
        "label": shown,
        "raw_label": label,
        "conf": _round(shown_p, 4),
        "dbfs": _round(_number(data.get("dbfs")), 1),
        "novelty": _round(_number(data.get("novelty")), 3),
        "topk": top_k,
    }
    return window, decode_embedding(data)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
