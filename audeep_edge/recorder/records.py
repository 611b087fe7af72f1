"""MQTT schema v1 messages (docs/mqtt.md) as the records the recorder stores.

:func:`parse` validates one message and returns a record, or None for anything malformed (wrong types,
non-finite numbers, oversized payloads, an unknown topic), which the recorder counts and drops: hostile
input never stops it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass

from audeep_edge.sinks.mqtt import DEVICE_ID

SCHEMA_VERSION = 1
KINDS = ("status", "info", "window", "health", "event", "clip")
MAX_PAYLOAD = 256 * 1024  # bytes of one message; a window with a JSON-list embedding is ~ 20 KiB
MAX_CLIP_PAYLOAD = 1024 * 1024  # the clip message's cap (docs/mqtt.md); larger clips stay on the device
MAX_TEXT = 200  # characters of a label, an event type or a clip id
CLIP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
CLIP_MAGIC = {"ogg": b"OggS", "flac": b"fLaC"}


@dataclass(frozen=True, slots=True)
class Window:
    """One analysed window. ``label`` is the scene shown (the smoothed label when the device smooths) and
    ``confidence`` that label's own probability; ``raw_label`` is the window's top class."""

    device_id: str
    wall_time: float
    seq: int  # -1 when the payload has none
    label: str | None
    raw_label: str | None
    confidence: float | None
    dbfs: float | None
    novelty: float | None


@dataclass(frozen=True, slots=True)
class Event:
    device_id: str
    wall_time: float
    type: str
    seq: int
    label: str | None
    payload: str  # the message's JSON


@dataclass(frozen=True, slots=True)
class Health:
    device_id: str
    wall_time: float
    payload: str


@dataclass(frozen=True, slots=True)
class Clip:
    device_id: str
    clip_id: str
    wall_time: float
    duration_s: float
    reason: str  # novel | label
    label: str | None
    score: float | None
    seq: int
    format: str  # ogg | flac
    audio: bytes


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """``status`` (online/offline/unknown) or ``info`` (JSON) of a device, whichever the message carried."""

    device_id: str
    seen: float
    status: str | None = None
    info: str | None = None


Record = Window | Event | Health | Clip | DeviceUpdate


def scene(data: dict) -> tuple[str | None, float | None]:
    """The scene a window shows and that label's own probability.

    The smoothed label when the device smooths (with ``smoothed_confidence``, its smoothed probability;
    devices from before that field give the window's probability of that label from ``label``/``top_k``,
    or None when it is not among them), else the window's top label and ``confidence``.
    """
    label, smoothed = data.get("label"), data.get("smoothed_label")
    if not isinstance(smoothed, str):
        return (label if isinstance(label, str) else None), number(data.get("confidence"))
    own = number(data.get("smoothed_confidence"))
    if own is None and smoothed == label:
        own = number(data.get("confidence"))
    if own is None:
        top_k = data.get("top_k")
        for entry in top_k if isinstance(top_k, list) else []:
            if isinstance(entry, dict) and entry.get("label") == smoothed:
                own = number(entry.get("p"))
                break
    return smoothed, own


def parse(device_id: str, kind: str, payload: bytes, rx: float) -> Record | None:
    """The record of one message on ``<prefix>/<device_id>/<kind>`` received at ``rx`` (Unix s), or None."""
    if kind not in KINDS or not DEVICE_ID.fullmatch(device_id):
        return None
    if len(payload) > (MAX_CLIP_PAYLOAD if kind == "clip" else MAX_PAYLOAD):
        return None
    if kind == "status":
        text = payload.decode("utf-8", "replace").strip()
        status = text if text in ("online", "offline") else "unknown" if not text else None
        return None if status is None else DeviceUpdate(device_id, rx, status=status)
    try:
        data = json.loads(payload, parse_constant=_reject)
        # stored compact; json.dumps gives up on nesting that json.loads still accepts (~1000 levels)
        text = _json(data) if kind in ("info", "health", "event") else ""
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested deeper than Python handles
        return None
    if not isinstance(data, dict) or data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        return None
    if kind == "info":
        return DeviceUpdate(device_id, rx, info=text)
    wall_time = number(data.get("wall_time"))
    wall_time = rx if wall_time is None else wall_time
    seq = data.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**62 else -1
    if kind == "window":
        label, confidence = scene(data)
        raw = data.get("label")
        if not (_text(label) and _text(raw)):
            return None
        return Window(device_id, wall_time, seq, label, raw, confidence, number(data.get("dbfs")),
                      number(data.get("novelty")))
    if kind == "health":
        return Health(device_id, wall_time, text)
    if kind == "event":
        event_type, label = data.get("type"), data.get("label")
        if not (isinstance(event_type, str) and 0 < len(event_type) <= MAX_TEXT and _text(label)):
            return None
        return Event(device_id, wall_time, event_type, seq, label, text)
    return _clip(device_id, data, wall_time, seq)


def _clip(device_id: str, data: dict, wall_time: float, seq: int) -> Clip | None:
    clip_id, fmt, reason, label = data.get("clip_id"), data.get("format"), data.get("reason"), data.get("label")
    duration = number(data.get("duration_s"))
    if not (isinstance(clip_id, str) and CLIP_ID.fullmatch(clip_id) and fmt in CLIP_MAGIC
            and reason in ("novel", "label") and _text(label) and duration is not None and duration >= 0):
        return None
    try:
        audio = base64.b64decode(data.get("audio_b64") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        return None
    if not audio.startswith(CLIP_MAGIC[fmt]):
        return None
    return Clip(device_id, clip_id, wall_time, duration, reason, label, number(data.get("score")), seq, fmt, audio)


def number(value) -> float | None:
    """``value`` as a finite float, or None (booleans, strings and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


def _text(value) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= MAX_TEXT)


def _json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))


def _reject(constant: str):
    raise ValueError(f"{constant} is not JSON")
