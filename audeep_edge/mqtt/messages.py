"""MQTT schema v1 messages (docs/mqtt.md) as a subscriber receives them: the one validator that the dashboard
and the recorder share.

Every message is hostile until :func:`parse_message` accepted it. It raises :class:`BadMessage` for a topic no
device could publish on, a payload over ``MAX_PAYLOAD`` bytes (a clip: ``MAX_CLIP_PAYLOAD``), a status other
than online/offline/empty, JSON that is not an object, is nested deeper than the parser handles or holds a
non-finite number (``NaN``, ``Infinity`` or a float literal beyond float range), a window whose label or
scene is not a short text, or an event without a short text ``type``; :class:`UnsupportedSchema` for another
``schema_version``. Optional fields are checked where they are read (:func:`number`, :func:`seq_of`,
:func:`scene`): a malformed one (a ``top_k`` that is not a list, a 400-digit integer level) counts as absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from audeep_edge.mqtt.settings import DEVICE_ID
from audeep_edge.sinks.payload import SCHEMA_VERSION

KINDS = ("status", "info", "window", "health", "event", "clip")
STATUSES = ("online", "offline")
MAX_PAYLOAD = 256 * 1024  # bytes of one message; a window with a JSON-list embedding is ~ 20 KiB
MAX_CLIP_PAYLOAD = 1024 * 1024  # the clip message's cap (docs/mqtt.md); larger clips stay on the device
MAX_TEXT = 200  # characters of a label, an event type or a clip id
MAX_SEQ = 2**62


class BadMessage(ValueError):
    """A message that is not schema v1; subscribers count it and go on."""


class UnsupportedSchema(BadMessage):
    """A message of another ``schema_version``."""


@dataclass(frozen=True, slots=True)
class Received:
    """One valid message from ``<prefix>/<device_id>/<kind>``.

    status : for ``status``: ``online``, ``offline`` or ``unknown`` (an empty payload clears a retained status).
    data : for every other kind: the JSON object.
    text : for ``info``, ``health`` and ``event``: ``data`` as compact JSON.
    """

    device_id: str
    kind: str
    status: str | None = None
    data: dict | None = None
    text: str | None = None


def split_topic(topic: str, prefix: str) -> tuple[str, str]:
    """``(device_id, kind)`` of ``<prefix>/<device_id>/<kind>``; empty strings for a topic outside ``prefix``."""
    rest = topic[len(prefix) + 1:] if topic.startswith(prefix + "/") else ""
    device_id, _, kind = rest.partition("/")
    return device_id, kind


def parse_message(device_id: str, kind: str, payload: bytes) -> Received:
    """Validate one message on ``<prefix>/<device_id>/<kind>``.

    Raises
    ------
    BadMessage : the message is malformed (see the module's docstring); UnsupportedSchema for another version.
    """
    if kind not in KINDS or not DEVICE_ID.fullmatch(device_id):
        raise BadMessage(f"no device publishes on {device_id[:64]!r}/{kind[:64]!r}")
    if len(payload) > (MAX_CLIP_PAYLOAD if kind == "clip" else MAX_PAYLOAD):
        raise BadMessage(f"{len(payload)} bytes is too large")
    if kind == "status":
        text = payload.decode("utf-8", "replace").strip()
        if text and text not in STATUSES:
            raise BadMessage("unknown status")
        return Received(device_id, kind, status=text or "unknown")
    data = _decode(payload)
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise UnsupportedSchema(f"another schema_version than {SCHEMA_VERSION}")
    if kind == "window":
        label, _ = scene(data)
        if not (is_label(data.get("label")) and is_label(label)):
            raise BadMessage("a window's label is not a short text")
    if kind == "event":
        event_type = data.get("type")
        if not (isinstance(event_type, str) and 0 < len(event_type) <= MAX_TEXT and is_label(data.get("label"))):
            raise BadMessage("an event needs a short text type")
    text = None
    if kind in ("info", "health", "event"):
        try:  # json.dumps gives up on nesting that json.loads still accepts (~1000 levels)
            text = json.dumps(data, separators=(",", ":"))
        except (ValueError, RecursionError):
            raise BadMessage("nested too deep") from None
    return Received(device_id, kind, data=data, text=text)


def _decode(payload: bytes) -> dict:
    try:
        data = json.loads(payload, parse_constant=_not_finite, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested deeper than Python handles
        raise BadMessage("not JSON, nested too deep, or a non-finite number") from None
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    return data


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal[:20]} is beyond float range")
    return value


def _not_finite(constant: str):
    raise ValueError(f"{constant} is not a finite number")


def number(value) -> float | None:
    """``value`` as a finite float, or None (booleans, strings and integers beyond float range are not numbers
    here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


def is_text(value) -> bool:
    """A string of at most ``MAX_TEXT`` characters."""
    return isinstance(value, str) and len(value) <= MAX_TEXT


def is_label(value) -> bool:
    """None (an encoder without a classifier head) or a short text."""
    return value is None or is_text(value)


def seq_of(data: dict) -> int | None:
    """The window counter ``seq``, or None when missing or out of range."""
    seq = data.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < MAX_SEQ else None


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
