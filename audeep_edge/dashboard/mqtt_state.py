"""Fleet state built from MQTT schema v1 messages: a bounded :class:`DeviceState` per device, drained as deltas.

:class:`FleetState` is fed by the MQTT thread (:meth:`FleetState.handle_message`) and read by the
dashboard's push thread, which sends browsers one full :meth:`~FleetState.snapshot` on connect and
then what changed (:meth:`~FleetState.collect_update`). Windows carry a per-device counter ``n`` so a
browser can drop the few windows that appear both in its snapshot and in the next delta.

Every message is hostile until :func:`~audeep_edge.mqtt.messages.parse_message` (the recorder's validator too)
accepted it: what it rejects is counted as bad and ignored; only bounded, flat fields reach the state, and a
message that still fails is counted, never fatal to the MQTT thread. At most ``HistoryLimits.max_devices``
devices are kept: a new one replaces the device silent the longest (browsers are told to drop it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import numpy as np

from audeep_edge.dashboard.device_state import DeviceState, HistoryLimits, rounded
from audeep_edge.dashboard.projection import decode_embedding
from audeep_edge.mqtt.messages import (MAX_TEXT, BadMessage, UnsupportedSchema, is_text, number, parse_message,
                                       scene, seq_of)
from audeep_edge.sinks.payload import SCHEMA_VERSION

log = logging.getLogger(__name__)

TOPIC_KINDS = ("status", "info", "window", "health", "event")
UNSUPPORTED = object()  # a payload of another schema_version
MAX_FIELDS = 64  # keys kept of an info, health or event payload
MAX_LABELS = 1000  # labels kept of an info payload
MAX_TOP_K = 10  # top-k entries kept per window
WARNED_DEVICES = 1000  # devices warned about (another schema_version) before warnings stop
LOG_EVERY = 1000  # repeated problems (failed messages, dropped devices) are logged the first and every Nth time


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
            parsed = _parse(device_id, kind, payload)
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


def _parse(device_id: str, kind: str, payload: bytes):
    """The bounded content of one message, None when it is malformed (not one of ``TOPIC_KINDS``, or refused by
    :func:`~audeep_edge.mqtt.messages.parse_message`), UNSUPPORTED for another schema_version.

    status -> "online" | "offline" | "unknown" (an empty payload clears a retained status);
    info / health / event -> flat dict of at most ``MAX_FIELDS`` scalar fields (:func:`_flat`; info also with
    ``labels`` and ``enrolled_labels``, lists of at most ``MAX_LABELS`` strings);
    window -> (compact window dict, embedding or None).
    """
    if kind not in TOPIC_KINDS:
        return None
    try:
        message = parse_message(device_id, kind, payload)
    except UnsupportedSchema:
        return UNSUPPORTED
    except BadMessage:
        return None
    data = message.data
    if kind == "status":
        return message.status
    if kind == "window":
        return _window(data)
    flat = _flat(data)
    if kind == "info":
        # enrolled_labels came after schema v1's first devices: without it, every label is the bundle's.
        for key in ("labels", "enrolled_labels"):
            value = data.get(key)
            flat[key] = [x for x in value[:MAX_LABELS] if is_text(x)] if isinstance(value, list) else []
    if kind == "event":
        flat["type"] = data["type"]
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
        if value is None or isinstance(value, bool) or is_text(value):
            flat[key] = value
        elif isinstance(value, (int, float)) and (finite := number(value)) is not None:
            flat[key] = value if isinstance(value, int) and abs(value) < 2**53 else finite
    return flat


def _window(data: dict) -> tuple[dict, np.ndarray | None]:
    """A window's fields for the live view (its labels are valid: checked by ``parse_message``)."""
    top_k_in = data.get("top_k")
    top_k = []
    for entry in top_k_in[:MAX_TOP_K] if isinstance(top_k_in, list) else []:
        p = number(entry.get("p")) if isinstance(entry, dict) else None
        if p is not None and is_text(entry.get("label")):
            top_k.append([entry["label"], round(p, 4)])
    shown, shown_p = scene(data)  # the smoothed label with its own (smoothed) probability
    window = {
        "seq": seq_of(data),
        "wall_time": number(data.get("wall_time")),
        "audio_time": number(data.get("audio_time")),
        "label": shown,
        "raw_label": data.get("label"),
        "conf": rounded(shown_p, 4),
        "dbfs": rounded(number(data.get("dbfs")), 1),
        "novelty": rounded(number(data.get("novelty")), 3),
        "topk": top_k,
    }
    return window, decode_embedding(data)
