"""Embeddings of audio files or a microphone recording, computed as ``listen`` computes them (same windows, front
end and model): what ``enroll`` and ``baseline fit`` learn from. Runtime only: numpy, no TensorFlow."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from audeep_edge.bundle import Bundle
from audeep_edge.errors import AudioError, ConfigError
from audeep_edge.pipeline.assemble import assemble
from audeep_edge.pipeline.windows import open_clip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embedded:
    """Embeddings of some audio: ``embeddings`` (n, D) float32, ``levels`` (n,) dBFS, ``groups`` (n,) source
    index, ``seconds`` of audio consumed, ``embed_seconds`` spent (wall)."""

    embeddings: np.ndarray
    levels: np.ndarray
    groups: np.ndarray
    seconds: float
    embed_seconds: float


def embed_audio(bundle: Bundle, *, files: list[Path] | None = None, seconds: float | None = None,
                device: str | None = None, hop: float | None = None, threads: int = 1,
                delegate: str = "none") -> Embedded:
    """Stream files (each from its start; one shorter than a window is zero-padded to one) or ``seconds`` of
    microphone audio through the bundle's model.

    Parameters
    ----------
    files : audio files; None or empty records ``seconds`` from the microphone ``device``.
    hop : seconds between windows (default: the bundle's ``hop_seconds``).

    Raises
    ------
    ConfigError : no audio asked for. AudioError : unreadable or empty audio.
    """
    from audeep_edge.config import ListenConfig

    if not files and seconds is None:
        raise ConfigError("no audio: pass --file FILE, or --seconds N to record from the microphone")
    if files and (seconds is not None or device is not None):
        raise ConfigError("--seconds/--device record from the microphone; they cannot be combined with --file")
    sources = [open_clip(bundle, f) for f in files or ()]  # a bad file is reported before the model loads
    run = assemble(ListenConfig(device=device, hop=hop, threads=threads, delegate=delegate, broker="none"), bundle,
                   adapt=False)
    fs = bundle.geometry.fs
    max_windows = None
    if not files:
        if seconds * fs < bundle.window_samples:
            raise AudioError(f"--seconds {seconds:g} is shorter than one {bundle.window_seconds:.2f} s window")
        sources = [run.open_source()]
        max_windows = 1 + int((seconds * fs - bundle.window_samples) // (run.hop.frames * bundle.geometry.hop))
        log.info("recording %.1f s from %s ...", seconds, sources[0].name)
    analyze, started = run.analyzer(), time.perf_counter()
    embeddings, levels, groups, audio = [], [], [], 0.0
    for index, source in enumerate(sources):
        window = None
        for window in islice(run.windows(source), max_windows):
            analysis = analyze(window)
            embeddings.append(analysis.embedding)
            levels.append(analysis.payload["dbfs"])
            groups.append(index)
        if window is None:
            raise AudioError(f"{source.name}: its audio is shorter than one {bundle.window_seconds:.2f} s window "
                             "of this bundle")
        audio += source.duration if files else window.audio_time
    return Embedded(embeddings=np.stack(embeddings), levels=np.asarray(levels), groups=np.asarray(groups),
                    seconds=audio, embed_seconds=time.perf_counter() - started)
