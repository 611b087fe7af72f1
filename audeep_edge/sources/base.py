"""The frame type every source produces, the source protocol, and the bounded queue live capture writes to."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class AudioBlock:
    """Consecutive audio samples from a source.

    Attributes
    ----------
    samples : np.ndarray [shape=(n, channels), float32, nominally in [-1, 1]]; owned by the block, never
        written to after it is handed over.
    captured : ``time.monotonic()`` when the block's last sample became available (capture time for live
        sources, read time for files); window latency is measured from it.
    """

    samples: np.ndarray
    captured: float


class Source(Protocol):
    """An audio source. ``blocks`` runs until the audio ends or ``stop`` is set, then releases the device."""

    name: str  #: for messages: the file path, ``stdin`` or the input device
    sample_rate: int  #: Hz
    channels: int

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        """Yield blocks in order; return at the end of the audio or soon (<= 0.25 s) after ``stop`` is set."""

    @property
    def overruns(self) -> int:
        """Blocks lost because the consumer was too slow (live sources; 0 for files and pipes)."""

    @property
    def queue_depth(self) -> int:
        """Blocks waiting to be processed."""


class BlockQueue:
    """Bounded hand-over from a capture callback to the pipeline thread.

    ``offer`` never blocks: when the queue is full the new block is dropped and counted, so the audio
    callback always returns in time and a slow consumer shows up as ``overruns``, never as a stall.

    Parameters
    ----------
    capacity : blocks held at most (capacity x block length = the audio that may pile up).
    """

    def __init__(self, capacity: int) -> None:
        self._queue: queue.Queue[AudioBlock] = queue.Queue(maxsize=capacity)
        self.overruns = 0

    def offer(self, block: AudioBlock) -> None:
        try:
            self._queue.put_nowait(block)
        except queue.Full:
            self.overruns += 1

    def take(self, timeout: float) -> AudioBlock | None:
        """The oldest block, or None if none arrives within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __len__(self) -> int:
        return self._queue.qsize()
