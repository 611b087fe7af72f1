"""Audio blocks -> mono at the bundle rate -> spectrogram frames -> one window every hop.

Everything numeric comes from the shared modules (``audio.mix``, ``audio.StreamingResampler``,
``features.StreamingFrontend``); this module only keeps the last window's frames and samples and decides
when a window is complete. :func:`source_windows` gives the windows of a whole clip or stream, as the device
computes them (``listen``, ``enroll``, ``train``, the codebook recipe).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from audeep_edge.audio import StreamingResampler, beyond_full_scale, check_finite, mix
from audeep_edge.features import StreamingFrontend, WindowFraming
from audeep_edge.sources import FileSource, PaddedClip, Source

log = logging.getLogger(__name__)

#: The front end runs once this many frames' worth of new samples (8 x 40 ms) have arrived, and at the last
#: sample of each window: one FFT call for several 0.1 s blocks (the frames are the same for any split).
#: Measured (`audeep-edge bench`, int8 bundle): RTF 0.011 -> 0.008 against one call per block; the window's
#: latency grows by at most these frames' work (< 1 ms), where one call per window would add ~3 ms.
FRONTEND_BATCH_FRAMES = 8


class RingBuffer:
    """The last ``capacity`` rows of a stream, in preallocated memory.

    Rows are written into a buffer twice the capacity and moved to the front when it fills, so reading
    the newest rows is always one contiguous slice.

    Parameters
    ----------
    capacity : rows kept.
    row_shape : shape of one row (``()`` for samples, ``(F,)`` for frames).
    """

    def __init__(self, capacity: int, row_shape: tuple[int, ...] = ()) -> None:
        self.capacity = capacity
        self._data = np.zeros((2 * capacity, *row_shape))
        self._end = 0

    def append(self, rows: np.ndarray) -> None:
        rows = rows[-self.capacity:]
        if self._end + len(rows) > len(self._data):
            keep = min(self._end, self.capacity - len(rows))
            self._data[:keep] = self._data[self._end - keep:self._end]
            self._end = keep
        self._data[self._end:self._end + len(rows)] = rows
        self._end += len(rows)

    def newest(self) -> np.ndarray:
        """A copy of the newest ``capacity`` rows (fewer at the start of a stream)."""
        return self._data[max(0, self._end - self.capacity):self._end].copy()


@dataclass(frozen=True)
class Window:
    """One encoder input's worth of audio.

    Attributes
    ----------
    index : 0, 1, 2, ... (the window's ``seq``).
    power : np.ndarray [shape=(T, F), float64], linear (mel) power frames.
    samples : np.ndarray [shape=(S,), float64], the mono samples the frames cover (before pre-emphasis).
    audio_time : seconds from the start of the stream to the end of the window (its last sample).
    captured : ``time.monotonic()`` of the block that completed the window.
    """

    index: int
    power: np.ndarray
    samples: np.ndarray
    audio_time: float
    captured: float


class Windower:
    """Turns source blocks into windows of ``framing.window_frames`` frames, one every ``hop_frames`` frames.

    Parameters
    ----------
    framing : the bundle's front end, frame geometry (its ``fs`` is the model's sample rate) and window length.
    hop_frames : frames between window starts (>= 1).
    source_rate : sample rate of the incoming blocks, Hz (resampled to ``geometry.fs`` if different).
    """

    def __init__(self, framing: WindowFraming, *, hop_frames: int, source_rate: int) -> None:
        fe, self.geometry = framing.frontend, framing.geometry
        self.framing, self.channels, self.hop_frames = framing, fe.channels, hop_frames
        self.window_samples = framing.window_samples
        self._frontend = StreamingFrontend(self.geometry, fe.mel_bands, fe.pre_emphasis)
        resample = source_rate != self.geometry.fs
        self._resampler = StreamingResampler(source_rate, self.geometry.fs) if resample else None
        self._frames = RingBuffer(framing.window_frames, (self._frontend.num_bands,))
        self._samples = RingBuffer(self.window_samples)
        self._pending: list[np.ndarray] = []  # samples received since the front end last ran
        self._received = 0  # samples at the model rate received
        self._next = 0  # index of the next window

    def _window_end(self, index: int) -> int:
        """Samples needed to complete window ``index``."""
        return index * self.hop_frames * self.geometry.hop + self.window_samples

    def push(self, block: np.ndarray, captured: float) -> list[Window]:
        """Add source samples [shape=(n, channels)]; return the windows they complete."""
        mono = mix(np.asarray(block, dtype=np.float64), self.channels)
        return self._feed(self._resampler.push(mono) if self._resampler else mono, captured)

    def flush(self, captured: float) -> list[Window]:
        """End of stream: drain the resampler; return the windows that completes (partial windows are dropped)."""
        return self._feed(self._resampler.flush(), captured) if self._resampler else []

    def _feed(self, x: np.ndarray, captured: float) -> list[Window]:
        windows = []
        while x.size:
            # Stop exactly at the next window's last sample, so the rings hold that window and no more.
            cut = self._window_end(self._next) - self._received
            piece, x = x[:cut], x[cut:]
            self._samples.append(piece)
            self._pending.append(piece.copy())        # the source may reuse its block
            self._received += piece.size
            complete = self._received == self._window_end(self._next)
            if complete or sum(p.size for p in self._pending) >= FRONTEND_BATCH_FRAMES * self.geometry.hop:
                self._frames.append(self._frontend.push(np.concatenate(self._pending)))
                self._pending.clear()
            if complete:
                windows.append(Window(index=self._next, power=self._frames.newest(),
                                      samples=self._samples.newest(), audio_time=self._received / self.geometry.fs,
                                      captured=captured))
                self._next += 1
        return windows

    @property
    def audio_seconds(self) -> float:
        """Audio received so far at the model rate, in seconds."""
        return self._received / self.geometry.fs


class BlockCheck:
    """Checks each block of one source: samples that are not finite raise AudioError (naming ``name``); audio
    beyond full scale is warned about once."""

    def __init__(self, name: str) -> None:
        self.name, self._warned = name, False

    def __call__(self, samples: np.ndarray) -> None:
        check_finite(samples, self.name)
        if not self._warned and (peak := beyond_full_scale(samples)) is not None:
            log.warning("%s: the audio exceeds full scale (peak %.2f); its level is reported as 0 dBFS",
                        self.name, peak)
            self._warned = True


def open_clip(framing: WindowFraming, path: str | Path) -> FileSource | PaddedClip:
    """An audio file as a source; one shorter than a window plus a frame is zero-padded to that, centred (as
    training pads short clips), so that it still gives a window.

    Raises
    ------
    AudioError : a missing, unreadable or empty file.
    """
    source, seconds = FileSource(path), framing.padded_clip_seconds
    if source.duration >= seconds:
        return source
    log.debug("%s: %.2f s is shorter than one %.2f s window: zero-padded", path, source.duration, seconds)
    return PaddedClip(path, seconds)


def source_windows(framing: WindowFraming, source: Source | str | Path, *,
                   hop_frames: int | None = None) -> Iterator[Window]:
    """The device's windows of ``source``, in order, until its audio ends (the resampler flushed).

    A path is read as a file (:func:`open_clip`: zero-padded when shorter than a window). Blocks are checked
    (:class:`BlockCheck`). Closing the iterator early releases the source.

    Parameters
    ----------
    framing : a bundle (or the framing a bundle will have).
    source : a source, or an audio file.
    hop_frames : frames between window starts (default: ``framing.hop_seconds``, rounded).

    Raises
    ------
    AudioError : unreadable audio, or samples that are not finite.
    """
    if isinstance(source, (str, Path)):
        source = open_clip(framing, source)
    windower = Windower(framing, hop_frames=hop_frames or framing.window_hop().frames,
                        source_rate=source.sample_rate)
    check, blocks = BlockCheck(source.name), source.blocks(threading.Event())
    try:
        for block in blocks:
            check(block.samples)
            yield from windower.push(block.samples, block.captured)
        yield from windower.flush(time.monotonic())
    finally:
        blocks.close()
