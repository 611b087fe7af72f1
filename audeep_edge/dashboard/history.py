"""The dashboard's history API, read from the recorder's :class:`~audeep_edge.recorder.store.Store`.

``GET /api/devices``                       every device on record (status, info, last message)
``GET /api/history?device=&from=&to=&buckets=``   windows of one device in [from, to) (Unix s): counts per label,
                                           ``buckets`` timeline buckets (clock hours when they would be >= 1 h),
                                           hourly summary
``GET /api/events?from=&to=[&device=][&type=a,b][&label=][&limit=]``   events and clips, newest first
``GET /api/clips/<device>/<clip_id>``      the clip's audio (``audio/ogg`` or ``audio/flac``; byte ranges)
"""

from __future__ import annotations

import json
import logging
import math
import re
from http import HTTPStatus
from urllib.parse import unquote

from audeep_edge.recorder.store import Store

log = logging.getLogger(__name__)

MAX_RANGE_S = 400 * 86400.0
MAX_BUCKETS = 2000
MAX_EVENTS = 1000
AUDIO_TYPES = {"ogg": "audio/ogg", "flac": "audio/flac"}
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

Response = tuple[HTTPStatus, bytes, str, dict]


class BadRequest(ValueError):
    """A query parameter the API cannot use (answered with 400 and the message)."""


class HistoryApi:
    """Answers the ``/api/`` history requests from ``store`` (read-only)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, path: str, query: dict[str, list[str]], headers) -> Response | None:
        """The response to ``GET path?query``, or None when ``path`` is not a history route."""
        try:
            if path == "/api/devices":
                return _json(self.store.devices())
            if path == "/api/history":
                start, end = _range(query)
                buckets = int(_number(query, "buckets", 600, 1, MAX_BUCKETS))
                return _json({"device": _text(query, "device"), "from": start, "to": end,
                              **self.store.history(_text(query, "device"), start, end, (end - start) / buckets)})
            if path == "/api/events":
                start, end = _range(query)
                types = tuple(t for t in _text(query, "type", "").split(",") if t)
                return _json(self.store.events(start, end, device_id=_text(query, "device", None), types=types,
                                               label=_text(query, "label", None),
                                               limit=int(_number(query, "limit", 200, 1, MAX_EVENTS))))
            if path.startswith("/api/clips/"):
                return self._clip(path, headers)
        except BadRequest as exc:
            return HTTPStatus.BAD_REQUEST, f"bad request: {exc}\n".encode(), "text/plain", {}
        except self.store.errors as exc:
            log.warning("history query failed: %s", exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, b"the history database is not answering\n", "text/plain", {}
        return None

    def _clip(self, path: str, headers) -> Response:
        device_id, _, clip_id = (unquote(part) for part in path[len("/api/clips/"):].partition("/"))
        found = self.store.clip(device_id, clip_id) if device_id and clip_id else None
        if found is None:
            return HTTPStatus.NOT_FOUND, b"no such clip\n", "text/plain", {}
        fmt, audio = found
        extra = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400"}
        match = BYTE_RANGE.fullmatch(headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.groups()
            if first:
                start, stop = int(first), min(int(last) if last else len(audio) - 1, len(audio) - 1)
            else:  # the last N bytes
                start, stop = max(0, len(audio) - int(last)), len(audio) - 1
            if start > stop:
                return (HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", AUDIO_TYPES[fmt],
                        {**extra, "Content-Range": f"bytes */{len(audio)}"})
            return (HTTPStatus.PARTIAL_CONTENT, audio[start:stop + 1], AUDIO_TYPES[fmt],
                    {**extra, "Content-Range": f"bytes {start}-{stop}/{len(audio)}"})
        return HTTPStatus.OK, audio, AUDIO_TYPES[fmt], extra


def _json(value) -> Response:
    return HTTPStatus.OK, json.dumps(value, separators=(",", ":")).encode(), "application/json", \
        {"Cache-Control": "no-store"}


def _text(query: dict[str, list[str]], name: str, default: str | None | type = BadRequest) -> str | None:
    values = query.get(name)
    if not values:
        if default is BadRequest:
            raise BadRequest(f"{name} is missing")
        return default
    return values[0]


def _number(query: dict[str, list[str]], name: str, default: float | None, low: float, high: float) -> float:
    text = _text(query, name, None)
    if text is None:
        if default is None:
            raise BadRequest(f"{name} is missing")
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise BadRequest(f"{name}={text!r}: expected {low:g}..{high:g}")
    return value


def _range(query: dict[str, list[str]]) -> tuple[float, float]:
    start = _number(query, "from", None, 0.0, 1e11)
    end = _number(query, "to", None, 0.0, 1e11)
    if not 0 < end - start <= MAX_RANGE_S:
        raise BadRequest("expected 0 < to - from <= 400 days")
    return start, end
