"""Whole-clip extraction (``preprocess``), built from the streaming front end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audeep_edge.audio import check_finite, mix, resample
from audeep_edge.errors import AudioError
from audeep_edge.features.config import FrameGeometry, FrontendConfig
from audeep_edge.features.mel import mel_centre_frequencies
from audeep_edge.features.normalize import minmax_scale, to_db
from audeep_edge.features.streaming import StreamingFrontend


@dataclass(frozen=True)
class Extracted:
    """Result of :func:`extract`: one (T, F) float32 matrix per chunk (one if not chunked)."""

    chunks: list[np.ndarray]
    geometry: FrameGeometry
    freqs: np.ndarray


def fix_length(samples: np.ndarray, n_fixed: int, center: bool) -> np.ndarray:
    """Cut or zero-pad ``samples`` [shape=(n, ...)] to ``n_fixed`` samples, at the end or symmetrically."""
    n = samples.shape[0]
    if n >= n_fixed:
        offset = (n - n_fixed) // 2 if center else 0
        return samples[offset : offset + n_fixed]
    pad_start = (n_fixed - n) // 2 if center else 0
    widths = [(pad_start, n_fixed - n - pad_start)] + [(0, 0)] * (samples.ndim - 1)
    return np.pad(samples, widths)


def extract(samples: np.ndarray, fs: int, cfg: FrontendConfig, *, scale: bool = True, where: str = "audio") -> Extracted:
    """auDeep's spectrogram extraction for one clip.

    Parameters
    ----------
    samples : np.ndarray [shape=(n, channels) or (n,)], float in [-1, 1].
    fs : sample rate of ``samples`` in Hz.
    cfg : front-end settings.
    scale : min-max scale each chunk to [-1, 1] (False returns dB values, for ``--pretend``).
    where : name used in error messages (usually the file path).

    Returns
    -------
    Extracted with ``chunks`` of shape (T, F) float32.
    """
    check_finite(samples, where)
    x = mix(samples, cfg.channels)
    if cfg.sample_rate is not None and cfg.sample_rate != fs:
        x, fs = resample(x, fs, cfg.sample_rate), cfg.sample_rate
    if cfg.fixed_length is not None:
        x = fix_length(x, int(cfg.fixed_length * fs), cfg.center_fixed)
    geometry = cfg.geometry(fs)
    frontend = StreamingFrontend(geometry, cfg.mel_bands, cfg.pre_emphasis)
    power = frontend.push(x)
    if power.shape[0] == 0:
        raise AudioError(f"{where}: {x.size / fs:.3f} s of audio is shorter than one {cfg.window_width} s window")
    db = to_db(power, cfg.clip_below, cfg.clip_above)
    pieces = [db]
    if cfg.chunk_count is not None:
        chunk_frames = int(fs * cfg.chunk_length) // geometry.hop
        complete = db.shape[0] // chunk_frames
        if chunk_frames == 0 or complete < cfg.chunk_count:
            raise AudioError(
                f"{where}: only {complete} complete chunks of {cfg.chunk_length} s, {cfg.chunk_count} required"
            )
        pieces = [db[i * chunk_frames : (i + 1) * chunk_frames] for i in range(cfg.chunk_count)]
    chunks = [minmax_scale(p) if scale else p.astype(np.float32) for p in pieces]
    if cfg.mel_bands:
        freqs = mel_centre_frequencies(fs=fs, n_mels=cfg.mel_bands)
    else:
        freqs = np.fft.rfftfreq(geometry.n_fft, 1.0 / fs)
    return Extracted(chunks=chunks, geometry=geometry, freqs=freqs)
