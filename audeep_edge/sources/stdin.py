"""Raw PCM on standard input (``arecord -t raw -f S16_LE -r 16000 -c 1 | audeep-edge listen --stdin``)."""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from typing import BinaryIO, Iterator

import numpy as np

from audeep_edge.errors import AudioError
from audeep_edge.sources.base import AudioBlock

log = logging.getLogger(__name__)

STDIN_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
_S16_SCALE = 1.0 / 32768.0
_F32_LIMIT = 100.0  # |x| beyond this is not float audio in [-1, 1]: almost surely the wrong --format
_FLOAT_CHECK_VALUES = 256  # non-zero values needed to tell float32 data read as s16le
_FLOAT_CHECK_BYTES = 1 << 16  # the check looks at the start of the input only


def looks_like_float32(data: bytes) -> bool | None:
    """Whether raw s16le input is float32 audio in fact: read as float32, nearly all non-zero values have
    magnitudes in [1e-6, 2]. Pairs of real 16-bit samples almost never do (they decode to tiny, huge or NaN
    floats). None while there are too few non-zero values to tell (silence)."""
    x = np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4")
    x = x[x != 0]
    if x.size < _FLOAT_CHECK_VALUES:
        return None
    with np.errstate(invalid="ignore"):
        plausible = np.count_nonzero((np.abs(x) >= 1e-6) & (np.abs(x) <= 2.0))
    return plausible >= 0.95 * x.size


class StdinSource:
    """Interleaved little-endian PCM from a pipe or file, read as it arrives.

    A pipe is not dropped from: when the pipeline is slower, the writer waits (its own overrun handling
    applies, e.g. arecord's). Reads wake up every 0.2 s to notice ``stop``. ``s16le`` input that looks like
    float32 samples (:func:`looks_like_float32`, checked once at the start) is warned about.

    Parameters
    ----------
    sample_format : ``s16le`` or ``f32le``.
    sample_rate : Hz.
    channels : interleaved channels.
    stream : binary input (default: standard input).
    block_seconds : preferred read size in seconds.
    """

    name = "stdin"
    overruns = 0
    queue_depth = 0

    def __init__(self, sample_format: str, sample_rate: int, channels: int, *, stream: BinaryIO | None = None,
                 block_seconds: float = 0.1) -> None:
        if sample_format not in STDIN_FORMATS:
            raise AudioError(f"--format must be one of {', '.join(STDIN_FORMATS)}, got {sample_format!r}")
        self.format, self.sample_rate, self.channels = sample_format, int(sample_rate), int(channels)
        self._dtype = STDIN_FORMATS[sample_format]
        self._frame_bytes = self._dtype.itemsize * self.channels
        self._read_bytes = max(1, int(block_seconds * self.sample_rate)) * self._frame_bytes
        self._stream = stream if stream is not None else sys.stdin.buffer

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        fd, pending, first = self._stream.fileno(), b"", True
        head, checked = b"", self.format != "s16le"
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(fd, self._read_bytes)
            if not chunk:
                break
            if first and chunk.startswith(b"RIFF"):
                raise AudioError("--stdin expects raw PCM but got a WAV header; use `arecord -t raw ...` "
                                 "or pass the file with --file")
            pending, first = pending + chunk, False
            if not checked:
                head += chunk
                verdict = looks_like_float32(head)
                if verdict is not None or len(head) >= _FLOAT_CHECK_BYTES:  # silent so far: give up
                    checked, head = True, b""
                    if verdict:
                        log.warning("--stdin: the data looks like float32 samples read as --format s16le; "
                                    "check --format (f32le)")
            usable = len(pending) - len(pending) % self._frame_bytes
            if usable:
                yield AudioBlock(self._decode(pending[:usable]), time.monotonic())
                pending = pending[usable:]
        if pending and not stop.is_set():
            raise AudioError(f"--stdin: the input ended inside a sample frame ({len(pending)} stray bytes); "
                             f"check --format {self.format} and --channels {self.channels}")

    def _decode(self, data: bytes) -> np.ndarray:
        x = np.frombuffer(data, dtype=self._dtype).reshape(-1, self.channels)
        if self.format == "s16le":
            return (x * _S16_SCALE).astype(np.float32)
        if not np.all(np.isfinite(x)) or np.abs(x).max() > _F32_LIMIT:
            raise AudioError("--stdin: the data is not f32le audio in [-1, 1] (NaN/inf or huge values); "
                             "check --format (s16le for arecord's default S16_LE) and --channels")
        return x.astype(np.float32)
