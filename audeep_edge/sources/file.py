"""Audio files (any format libsndfile reads), as fast as possible or paced like a live source."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import soundfile

from audeep_edge.audio.io import read_error_reason
from audeep_edge.errors import AudioError
from audeep_edge.sources.base import AudioBlock


class FileSource:
    """Read a file block by block.

    Parameters
    ----------
    path : WAV, FLAC, OGG, ... file.
    realtime : hand out each block when its last sample would have been captured live (for demos and
        latency checks); otherwise read as fast as the pipeline consumes.
    block_seconds : block length in seconds.

    Raises
    ------
    AudioError : missing, unreadable or empty file (at construction, before anything starts).
    """

    overruns = 0
    queue_depth = 0

    def __init__(self, path: str | Path, *, realtime: bool = False, block_seconds: float = 0.1) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.realtime = realtime
        if not self.path.is_file():
            raise AudioError(f"--file {self.path}: no such audio file")
        try:
            with soundfile.SoundFile(str(self.path)) as f:
                self.sample_rate, self.channels, frames = int(f.samplerate), int(f.channels), f.frames
        except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
            raise AudioError(f"--file {self.path}: cannot read audio ({read_error_reason(exc)})") from None
        if frames == 0:
            raise AudioError(f"--file {self.path}: the file contains no audio samples")
        self.duration = frames / self.sample_rate
        self._block = max(1, int(round(block_seconds * self.sample_rate)))

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        start, read = time.monotonic(), 0
        try:
            with soundfile.SoundFile(str(self.path)) as f:
                while not stop.is_set():
                    samples = f.read(self._block, dtype="float32", always_2d=True)
                    if samples.shape[0] == 0:
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

