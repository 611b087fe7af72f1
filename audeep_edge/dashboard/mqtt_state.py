"""Fleet state built from MQTT schema v1 messages: bounded per-device history, drained as deltas.

:class:`FleetState` is fed by the MQTT thread (:meth:`FleetState.handle_message`) and read by the
dashboard's push thread, which sends browsers one full :meth:`~FleetState.snapshot` on connect and
then what changed (:meth:`~FleetState.collect_update`). Windows carry a per-device counter ``n`` so a
browser can drop the few windows that appear both in its snapshot and in the next delta.

Every message is hostile until validated: payloads over ``MAX_PAYLOAD`` bytes, JSON nested too deep to parse,
numbers beyond float range, labels over ``MAX_TEXT`` characters and device ids that could not be a device's
are counted as bad and ignored; only bounded, flat fields reach the state, and a message that still fails is
counted, never fatal to the MQTT thread. At most ``HistoryLimits.max_devices`` devices are kept: a new one
replaces the device silent the longest (browsers are told to drop it).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from audeep_edge.dashboard.projection import PcaProjector, decode_embedding
from audeep_edge.recorder.records import MAX_PAYLOAD, MAX_TEXT, number, scene
from audeep_edge.sinks.mqtt import DEVICE_ID

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TOPIC_KINDS = ("status", "info", "window", "health", "event")
UNSUPPORTED = object()  # a payload of another schema_version
RECENT_KEYS = 256  # windows remembered per device to recognise repeats
MAX_FIELDS = 64  # keys kept of an info, health or event payload
MAX_LABELS = 1000  # labels kept of an info payload
MAX_TOP_K = 10  # top-k entries kept per window
WARNED_DEVICES = 1000  # devices warned about (another schema_version) before warnings stop
LOG_EVERY = 1000  # repeated problems (failed messages, dropped devices) are logged the first and every Nth time


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
                "peak": _round(number(event.get("peak")), 4)}
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
        self._devices: OrderedDict[str, DeviceState] = OrderedDict()  # least recently heard from first
        self._removed: list[str] = []  # devices dropped since the last delta
        started = time.time()  # pages allow the first connection a grace period before calling the broker down
        self._broker = {"url": broker, "connected": False, "error": "connecting", "since": started, "started": started}
        self._broker_changed = True
        self._messages = 0
        self._bad_messages = 0
        self._failed = 0  # bad messages that raised while being folded in
        self._devices_dropped = 0
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
        A message that fails in any other way is counted as bad too: one message never stops the feed.
        """
        rx = time.time() if rx is None else rx
        try:
            parsed = _parse(kind, payload) if DEVICE_ID.fullmatch(device_id) else None
            with self._lock:
                return self._fold(device_id, kind, parsed, rx)
        except Exception as exc:  # noqa: BLE001 - hostile input must not stop the MQTT thread
            with self._lock:
                self._bad_messages += 1
                self._failed += 1
                failed = self._failed
            if failed == 1 or failed % LOG_EVERY == 0:
                log.warning("ignored a message on %s/%s that could not be used (%s; %d so far)", device_id[:64], kind,
                            type(exc).__name__, failed)
            return False

    def _fold(self, device_id: str, kind: str, parsed, rx: float) -> bool:
        """:meth:`handle_message` with the lock held and the payload parsed."""
        self._messages += 1
        if parsed is None or parsed is UNSUPPORTED:
            self._bad_messages += 1
            if parsed is UNSUPPORTED and device_id not in self._warned_schema \
                    and len(self._warned_schema) < WARNED_DEVICES:
                self._warned_schema.add(device_id)
                log.warning("device %s publishes another schema_version; this dashboard reads version %d",
                            device_id, SCHEMA_VERSION)
            return False
        device = self._devices.get(device_id)
        if device is None:
            if kind == "status" and parsed == "unknown":
                return True  # a cleared retained status for a device we never saw
            device = self._devices[device_id] = DeviceState(device_id, self.limits)
            while len(self._devices) > self.limits.max_devices:
                dropped, _ = self._devices.popitem(last=False)
                self._removed.append(dropped)
                self._devices_dropped += 1
                if self._devices_dropped == 1 or self._devices_dropped % LOG_EVERY == 0:
                    log.info("keeping %d devices at most: dropped %s, silent the longest (%d dropped so far)",
                             self.limits.max_devices, dropped, self._devices_dropped)
        self._devices.move_to_end(device_id)
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
            if self._removed:  # before "devices" on the page: a device dropped and back again starts afresh
                update["removed"], self._removed = self._removed, []
            if self._broker_changed:
                update["broker"] = dict(self._broker)
                self._broker_changed = False
            return update

    def stats(self) -> dict:
        """Message counters: total, malformed, the recent rate (messages per second), devices kept and dropped."""
        with self._lock:
            return self._stats()

    def _stats(self) -> dict:
        mark_t, mark_n = self._rate_mark
        t = time.monotonic()
        if t - mark_t >= 1.0:
            self._rate = (self._messages - mark_n) / (t - mark_t)
            self._rate_mark = (t, self._messages)
        return {"messages": self._messages, "bad_messages": self._bad_messages,
                "messages_per_s": round(self._rate, 1), "devices": len(self._devices),
                "devices_dropped": self._devices_dropped}

    def _sorted(self) -> list[DeviceState]:
        return [self._devices[k] for k in sorted(self._devices)]


def _parse(kind: str, payload: bytes):
    """Validated content of one message, or None when malformed (over ``MAX_PAYLOAD`` bytes, not JSON, nested
    too deep for the parser, or not the schema).

    status -> "online" | "offline" | "unknown" (an empty payload clears a retained status);
    info / health / event -> flat dict of at most ``MAX_FIELDS`` scalar fields (:func:`_flat`; info also with
    ``labels`` and ``enrolled_labels``, lists of at most ``MAX_LABELS`` strings);
    window -> (compact window dict, embedding or None);
    UNSUPPORTED for another schema_version.
    """
    if len(payload) > MAX_PAYLOAD:
        return None
    if kind == "status":
        text = payload.decode("utf-8", "replace").strip()
        return text if text in ("online", "offline") else "unknown" if not text else None
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        return UNSUPPORTED
    if kind == "window":
        return _parse_window(data)
    flat = _flat(data)
    if kind == "info":
        # enrolled_labels came after schema v1's first devices: without it, every label is the bundle's.
        for key in ("labels", "enrolled_labels"):
            value = data.get(key)
            flat[key] = [x for x in value[:MAX_LABELS] if _text(x)] if isinstance(value, list) else []
    if kind == "event" and not isinstance(flat.get("type"), str):
        return None
    return flat


def _flat(data: dict) -> dict:
    """The scalar fields of a payload: strings of at most ``MAX_TEXT`` characters, finite numbers, booleans and
    nulls, at most ``MAX_FIELDS`` of them; anything else (nested values, huge numbers, long text) is left out."""
    flat = {}
    for key, value in data.items():
        if len(flat) == MAX_FIELDS:
            break
        if len(key) > MAX_TEXT:
            continue
        if value is None or isinstance(value, bool) or _text(value):
            flat[key] = value
        elif isinstance(value, (int, float)) and (finite := number(value)) is not None:
            flat[key] = value if isinstance(value, int) and abs(value) < 2**53 else finite
    return flat


def _text(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _parse_window(data: dict) -> tuple[dict, np.ndarray | None] | None:
    label, top_k_in = data.get("label"), data.get("top_k") or []
    if not (label is None or _text(label)) or not isinstance(top_k_in, list):  # None: no classifier head
        return None
    top_k = []
    for entry in top_k_in[:MAX_TOP_K]:
        p = number(entry.get("p")) if isinstance(entry, dict) else None
        if p is not None and _text(entry.get("label")):
            top_k.append([entry["label"], round(p, 4)])
    shown, shown_p = scene(data)  # the smoothed label with its own (smoothed) probability
    if not (shown is None or _text(shown)):
        return None
    seq = data.get("seq")
    window = {
        "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**62 else None,
        "wall_time": number(data.get("wall_time")),
        "audio_time": number(data.get("audio_time")),
        "label": shown,
        "raw_label": label,
        "conf": _round(shown_p, 4),
        "dbfs": _round(number(data.get("dbfs")), 1),
        "novelty": _round(number(data.get("novelty")), 3),
        "topk": top_k,
    }
    return window, decode_embedding(data)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
