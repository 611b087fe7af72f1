"""Audio files (any format libsndfile reads), as fast as possible or paced like a live source, or whole and
zero-padded when shorter than a window."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

from audeep_edge.audio.io import read_audio, read_error_reason, truncation
from audeep_edge.errors import AudioError
from audeep_edge.features.offline import fix_length
from audeep_edge.sources.base import AudioBlock

log = logging.getLogger(__name__)


class FileSource:
    """Read a file block by block.

    Parameters
    ----------
    path : WAV, FLAC, OGG, ... file.
    realtime : hand out each block when its last sample would have been captured live (for demos and
        latency checks); otherwise read as fast as the pipeline consumes.
    block_seconds : block length in seconds.

    A file cut short (a WAV shorter than its header says, an Ogg stream without its end) is warned about at
    construction, and audio that could not be decoded (corrupt pages: later ``audio_time`` values run early by
    that much) when the file has been read; both name the file and the seconds missing where known.

    Raises
    ------
    AudioError : missing, unreadable or empty file, or a directory (at construction, before anything starts).
    """

    overruns = 0
    queue_depth = 0

    def __init__(self, path: str | Path, *, realtime: bool = False, block_seconds: float = 0.1) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.realtime = realtime
        if self.path.is_dir():
            raise AudioError(f"--file {self.path}: is a directory, not an audio file")
        if not self.path.exists():
            raise AudioError(f"--file {self.path}: no such audio file")
        try:
            self.path.open("rb").close()  # libsndfile would only say "System error"
        except OSError as exc:
            raise AudioError(f"--file {self.path}: cannot read ({exc.strerror})") from None
        try:
            with soundfile.SoundFile(str(self.path)) as f:
                self.sample_rate, self.channels, frames = int(f.samplerate), int(f.channels), f.frames
                cut_short = truncation(f.extra_info, self.sample_rate)
        except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
            raise AudioError(f"--file {self.path}: cannot read audio ({read_error_reason(exc)})") from None
        if frames == 0:
            raise AudioError(f"--file {self.path}: the file contains no audio samples")
        if cut_short:
            log.warning("--file %s: %s", self.path, cut_short)
        self.frames = frames
        self.duration = frames / self.sample_rate
        self._block = max(1, int(round(block_seconds * self.sample_rate)))

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        start, read = time.monotonic(), 0
        try:
            with soundfile.SoundFile(str(self.path)) as f:
                while not stop.is_set():
                    samples = f.read(self._block, dtype="float32", always_2d=True)
                    if samples.shape[0] == 0:
                        self._check_decoded(read)
                        return
                    read += samples.shape[0]
                    captured = time.monotonic()
                    if self.realtime:
                        captured = start + read / self.sample_rate
                        stop.wait(max(0.0, captured - time.monotonic()))
                    yield AudioBlock(samples, captured)
        except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
            raise AudioError(f"--file {self.path}: cannot read audio after {read / self.sample_rate:.2f} s "
                             f"({read_error_reason(exc)})") from None

    def _check_decoded(self, read: int) -> None:
        """Warn when fewer frames could be decoded than the file declares (corrupt compressed data)."""
        if read < self.frames:
            log.warning("--file %s: %.2f s of its %.2f s could not be decoded (corrupt data); audio_time after the "
                        "damage runs early by up to that much", self.path, (self.frames - read) / self.sample_rate,
                        self.duration)


class PaddedClip:
    """A whole file zero-padded on both sides to ``seconds``, as one block: as training pads short clips to its
    fixed length (``--fixed-length``, centred), so that a 2 s recording of a doorbell still gives a window of a
    5 s-window model.

    Raises
    ------
    AudioError : unreadable or empty file.
    """

    overruns = 0
    queue_depth = 0

    def __init__(self, path: str | Path, seconds: float) -> None:
        samples, fs = read_audio(path)
        self.name, self.sample_rate, self.channels = f"--file {path}", fs, samples.shape[1]
        self._samples = fix_length(samples, int(np.ceil(seconds * fs)), center=True).astype(np.float32)
        self.duration = self._samples.shape[0] / fs

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        yield AudioBlock(self._samples, time.monotonic())

