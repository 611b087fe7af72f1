"""Audio blocks -> mono at the bundle rate -> spectrogram frames -> one window every hop.

Everything numeric comes from the shared modules (``audio.mix``, ``audio.StreamingResampler``,
``features.StreamingFrontend``); this module only keeps the last window's frames and samples and decides
when a window is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audeep_edge.audio import StreamingResampler, mix
from audeep_edge.features import FrameGeometry, StreamingFrontend

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
    """Turns source blocks into windows of ``window_frames`` frames, one every ``hop_frames`` frames.

    Parameters
    ----------
    geometry : the bundle's frame geometry (its ``fs`` is the model's sample rate).
    mel_bands, pre_emphasis, channels : the bundle's front-end settings.
    window_frames : T.
    hop_frames : frames between window starts (>= 1).
    source_rate : sample rate of the incoming blocks, Hz (resampled to ``geometry.fs`` if different).
    """

    def __init__(self, geometry: FrameGeometry, *, mel_bands: int | None, pre_emphasis: float, channels: str,
                 window_frames: int, hop_frames: int, source_rate: int) -> None:
        self.geometry, self.channels = geometry, channels
        self.window_frames, self.hop_frames = window_frames, hop_frames
        self.window_samples = (window_frames - 1) * geometry.hop + geometry.n_fft
        self._frontend = StreamingFrontend(geometry, mel_bands, pre_emphasis)
        self._resampler = StreamingResampler(source_rate, geometry.fs) if source_rate != geometry.fs else None
        self._frames = RingBuffer(window_frames, (self._frontend.num_bands,))
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
