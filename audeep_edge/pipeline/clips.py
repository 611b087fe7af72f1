"""Event clips: a ring of the source's recent audio, and a short clip (pre-roll + triggering window + post-roll)
saved for each novel sound and each watched label, published as the ``clip`` message (docs/mqtt.md) and kept on
disk within a quota.

The pipeline thread only copies audio and decides; encoding (OGG Vorbis costs ~0.3 s for 9 s of 48 kHz stereo on
a 2-core VM) and the disk run in one writer thread, so a clip never stalls capture. Finished clips come back
through :meth:`ClipSaver.ready`, and the pipeline hands them to its sinks from its own thread.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from audeep_edge.errors import ConfigError
from audeep_edge.head.novelty import NoveltyConfig
from audeep_edge.sinks.payload import SCHEMA_VERSION, to_json

log = logging.getLogger(__name__)

MAX_PAYLOAD = 1024 * 1024  # bytes of one clip message; a larger clip is published without its audio
LEAD_MAX_S = 60.0  # the most audio kept for a novel sound's start (its minimum duration): 10 MB at 44.1 kHz
FORMATS = {"ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}
CLIP_FILE = re.compile(r"\d+-(novel|label)[A-Za-z0-9_.-]*\.(ogg|flac)")  # the files this module writes (and deletes)


@dataclass(frozen=True)
class ClipSettings:
    """What to save and how long to keep it.

    directory : where clips are written (created when missing).
    watch : labels that trigger a clip when a window's probability of them reaches ``min_score``.
    format : ``ogg`` (Vorbis) or ``flac``.
    pre_roll, post_roll : seconds before the triggering window and after it.
    lead : seconds a novel sound lasts before its event fires (``--novelty-min-duration``): its clip starts
        that much earlier, up to ``LEAD_MAX_S``.
    max_bytes : disk quota of the clip files; the oldest go first.
    max_age_s : clips older than this are deleted.
    """

    directory: Path
    watch: tuple[str, ...] = ()
    min_score: float = 0.7
    format: str = "ogg"
    pre_roll: float = 2.0
    post_roll: float = 2.0
    lead: float = NoveltyConfig.min_duration
    max_bytes: int = 100_000_000
    max_age_s: float = 7 * 86400.0


def watched_score(payload: dict, label: str) -> float:
    """The window's probability of ``label`` (from its ``top_k``; 0 when it is not among them)."""
    return next((float(entry["p"]) for entry in payload.get("top_k") or [] if entry.get("label") == label), 0.0)


def label_slug(label: str) -> str:
    """``label`` with every character but letters, digits, ``.`` and ``-`` replaced by ``_`` (for ids and names)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", label)[:64]


@dataclass
class _Clip:
    clip_id: str
    start: int  # sample index of the first sample
    end: int  # sample index after the last sample
    wall_time: float  # Unix time of ``start``
    reason: str
    label: str | None
    score: float | None
    seq: int


class ClipSaver:
    """Keeps the last seconds of source audio and turns triggering windows into saved, publishable clips.

    Parameters
    ----------
    settings : what to save (:class:`ClipSettings`).
    device_id : ``device_id`` of the clip payloads.
    sample_rate : rate of the source blocks, Hz (clips keep the source's rate and channels).
    window_seconds : length of one analysis window.

    Raises
    ------
    ConfigError : the directory cannot be created or written.
    """

    def __init__(self, settings: ClipSettings, *, device_id: str, sample_rate: int, window_seconds: float) -> None:
        self.settings, self.device_id, self.rate = settings, device_id, sample_rate
        self.window_seconds = window_seconds
        try:
            settings.directory.mkdir(parents=True, exist_ok=True)
            probe = settings.directory / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"--clips {settings.directory}: cannot write there ({exc.strerror or exc})") from None
        self._lead = int((settings.pre_roll + window_seconds + min(settings.lead, LEAD_MAX_S)) * sample_rate)
        self._keep = self._lead + int(settings.post_roll * sample_rate) + 1
        self._blocks: deque[tuple[int, np.ndarray]] = deque()  # (index of the first sample, samples (n, channels))
        self._received = 0
        self._pending: list[_Clip] = []
        self._last_end: dict[str | None, int] = {}  # watched label (None: novel) -> end of its last clip
        self._active: set[str] = set()  # watched labels at or above the minimum score in the last window
        self._jobs: queue.Queue[tuple[_Clip, np.ndarray] | None] = queue.Queue()
        self._done: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._writing: set[str] = set()
        self._writer = threading.Thread(target=self._write_loop, name="clip-writer", daemon=True)
        self._writer.start()
        self._enforce_quota()

    # -- pipeline thread -----------------------------------------------------------------------------

    def push(self, samples: np.ndarray) -> None:
        """Add one source block [shape=(n, channels)] to the ring; clips whose post-roll it completes are saved."""
        block = np.array(samples, dtype=np.float32, ndmin=2).reshape(len(samples), -1)
        self._blocks.append((self._received, block))
        self._received += len(block)
        self._save_due()  # before trimming: a clip completed by this block may reach back past the ring
        while self._blocks and self._blocks[0][0] + len(self._blocks[0][1]) < self._received - self._keep:
            self._blocks.popleft()

    def observe(self, payload: dict, events: list[dict]) -> None:
        """Start a clip for a ``novel`` event's start and for each watched label this window rises to.

        ``payload`` is the window's, ``events`` the events it caused (schema v1).
        """
        end = round(payload["audio_time"] * self.rate)
        for event in events:
            if event.get("type") == "novel" and event.get("state") == "start":
                start = round((event["start_time"] - self.window_seconds) * self.rate)
                self._start(payload, start, end, "novel", None, event.get("peak"))
        for label in self.settings.watch:
            score = watched_score(payload, label)
            if score < self.settings.min_score:
                self._active.discard(label)
            elif label not in self._active:
                self._active.add(label)
                self._start(payload, end - round(self.window_seconds * self.rate), end, "label", label, score)
        self._save_due()

    def ready(self) -> list[dict]:
        """``clip`` payloads of the clips written since the last call."""
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> list[dict]:
        """End of stream: save the clips still waiting for their post-roll with the audio there is, wait for the
        writer and return the payloads not yet collected."""
        for clip in self._pending:
            clip.end = self._received
        self._save_due()
        self._jobs.put(None)
        self._writer.join()
        return self.ready()

    def _start(self, payload: dict, start: int, end: int, reason: str, label: str | None,
               score: float | None) -> None:
        if start < self._last_end.get(label, -1):  # this window is in the last clip for the same reason
            return
        first = max(0, start - round(self.settings.pre_roll * self.rate), end - self._lead)
        last = end + round(self.settings.post_roll * self.rate)
        wall = payload["wall_time"] - (end - first) / self.rate
        base = f"{round(wall * 1000)}-{reason}" + (f"-{label_slug(label)}" if label else "")
        clip_id, n = base, 1
        while clip_id in self._writing or self._path(clip_id).exists():
            n += 1
            clip_id = f"{base}-{n}"
        self._writing.add(clip_id)
        self._last_end[label] = last
        self._pending.append(_Clip(clip_id, first, last, wall, reason, label,
                                   None if score is None else round(float(score), 4), int(payload["seq"])))

    def _save_due(self) -> None:
        for clip in [c for c in self._pending if c.end <= self._received]:
            self._pending.remove(clip)
            self._jobs.put((clip, self._slice(clip.start, clip.end)))

    def _slice(self, start: int, end: int) -> np.ndarray:
        parts = [block[max(0, start - first):max(0, end - first)] for first, block in self._blocks
                 if first < end and first + len(block) > start]
        return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)

    def _path(self, clip_id: str) -> Path:
        return self.settings.directory / f"{clip_id}.{self.settings.format}"

    # -- writer thread -------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            clip, samples = job
            try:
                payload = self._write(clip, samples)
            except Exception as exc:  # noqa: BLE001 - a clip that cannot be made must not stop listening
                log.warning("clip %s was not saved: %s", clip.clip_id, exc)
                payload = None
            self._writing.discard(clip.clip_id)
            if payload is not None:
                self._done.put(payload)

    def _write(self, clip: _Clip, samples: np.ndarray) -> dict | None:
        if not len(samples):
            return None
        container, subtype = FORMATS[self.settings.format]
        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(samples, -1.0, 1.0), self.rate, format=container, subtype=subtype)
        audio = buffer.getvalue()
        path, tmp = self._path(clip.clip_id), self.settings.directory / f".{clip.clip_id}.tmp"
        try:
            tmp.write_bytes(audio)
            os.replace(tmp, path)
        except OSError as exc:  # a full disk: the clip is still published
            log.warning("clip %s: cannot write %s (%s); publishing it only", clip.clip_id, path, exc.strerror)
            tmp.unlink(missing_ok=True)
        self._enforce_quota()
        payload = {"schema_version": SCHEMA_VERSION, "device_id": self.device_id, "clip_id": clip.clip_id,
                   "wall_time": round(clip.wall_time, 3), "duration_s": round(len(samples) / self.rate, 3),
                   "reason": clip.reason, "label": clip.label, "score": clip.score, "seq": clip.seq,
                   "format": self.settings.format, "audio_b64": base64.b64encode(audio).decode("ascii")}
        if len(to_json(payload)) > MAX_PAYLOAD:
            log.info("clip %s is %d bytes: published without its audio, kept in %s", clip.clip_id, len(audio),
                     self.settings.directory)
            payload["audio_b64"] = None
        return payload

    def _enforce_quota(self) -> None:
        """Delete clips older than ``max_age_s``, then the oldest until the rest fit in ``max_bytes``; the newest
        clip stays (a quota smaller than one clip keeps the last one)."""
        try:
            files = []
            for entry in os.scandir(self.settings.directory):
                if CLIP_FILE.fullmatch(entry.name) and entry.is_file():
                    stat = entry.stat()
                    files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
            files.sort()
            total, horizon = sum(size for _, size, _ in files), time.time() - self.settings.max_age_s
            for mtime, size, path in files:
                if mtime >= horizon and (total <= self.settings.max_bytes or path == files[-1][2]):
                    break
                path.unlink(missing_ok=True)
                total -= size
        except OSError as exc:
            log.warning("--clips %s: cannot apply the quota (%s)", self.settings.directory, exc.strerror or exc)
