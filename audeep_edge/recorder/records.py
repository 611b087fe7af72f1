"""MQTT schema v1 messages (docs/mqtt.md) as the records the recorder stores.

:func:`parse` validates one message with the subscribers' shared validator
(:func:`~audeep_edge.mqtt.messages.parse_message`), checks a clip's own fields and audio, and returns a record,
or None for anything malformed, which the recorder counts and drops: hostile input never stops it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from audeep_edge.mqtt.messages import BadMessage, Received, is_label, number, parse_message, scene, seq_of

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


def parse(device_id: str, kind: str, payload: bytes, rx: float) -> Record | None:
    """The record of one message on ``<prefix>/<device_id>/<kind>`` received at ``rx`` (Unix s), or None."""
    try:
        message = parse_message(device_id, kind, payload)
    except BadMessage:
        return None
    if kind == "status":
        return DeviceUpdate(device_id, rx, status=message.status)
    if kind == "info":
        return DeviceUpdate(device_id, rx, info=message.text)
    return _record(message, rx)


def _record(message: Received, rx: float) -> Record | None:
    device_id, data = message.device_id, message.data
    wall_time = number(data.get("wall_time"))
    wall_time = rx if wall_time is None else wall_time
    seq = seq_of(data)
    seq = -1 if seq is None else seq
    if message.kind == "window":
        label, confidence = scene(data)
        return Window(device_id, wall_time, seq, label, data.get("label"), confidence, number(data.get("dbfs")),
                      number(data.get("novelty")))
    if message.kind == "health":
        return Health(device_id, wall_time, message.text)
    if message.kind == "event":
        return Event(device_id, wall_time, data["type"], seq, data.get("label"), message.text)
    return _clip(device_id, data, wall_time, seq)


def _clip(device_id: str, data: dict, wall_time: float, seq: int) -> Clip | None:
    clip_id, fmt, reason, label = data.get("clip_id"), data.get("format"), data.get("reason"), data.get("label")
    duration = number(data.get("duration_s"))
    if not (isinstance(clip_id, str) and CLIP_ID.fullmatch(clip_id) and fmt in CLIP_MAGIC
            and reason in ("novel", "label") and is_label(label) and duration is not None and duration >= 0):
        return None
    try:
        audio = base64.b64decode(data.get("audio_b64") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        return None
    if not audio.startswith(CLIP_MAGIC[fmt]):
        return None
    return Clip(device_id, clip_id, wall_time, duration, reason, label, number(data.get("score")), seq, fmt, audio)
