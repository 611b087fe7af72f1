"""Augmented views of t-RAE windows for agreement training (numpy only).

A window is auDeep's scaling of one spectrogram window, ``(T, F)`` in [-1, 1]: 1 is the window's peak, -1 is
``range_db`` under it (``features.window_features``). A view of it is what the same sound could have looked like:
another sound mixed in below it, the mel axis warped and shifted (another voice, another microphone), the
window's start moved, one band of frames and one band of bins masked. Each view is scaled again to its own peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audeep_edge.errors import ConfigError


@dataclass(frozen=True)
class ViewSettings:
    """How far a view may move from its window.

    range_db : the dB span of [-1, 1] (the front end's ``clip_below``, negated).
    mix_probability, mix_gain_db : how often another window is mixed in, and how far under the window's level.
    warp : the mel axis is stretched by a factor drawn log-uniformly from [1 / (1 + warp), 1 + warp].
    shift_bins, roll_frames : the largest shift of the mel axis (bins) and circular shift in time (frames).
    mask_frames, mask_bins : the widest masked band of frames and of bins (set to -1; at most a quarter).
    """

    range_db: float = 60.0
    mix_probability: float = 0.5
    mix_gain_db: tuple[float, float] = (-20.0, -6.0)
    warp: float = 0.12
    shift_bins: float = 3.0
    roll_frames: int = 20
    mask_frames: int = 12
    mask_bins: int = 12

    def __post_init__(self) -> None:
        counts = (self.shift_bins, self.roll_frames, self.mask_frames, self.mask_bins)
        if (not self.range_db > 0 or not 0 <= self.mix_probability <= 1 or not 0 <= self.warp < 1
                or min(counts) < 0 or self.mix_gain_db[0] > self.mix_gain_db[1]):
            raise ConfigError(f"view settings out of range: {self}")


def view(window: np.ndarray, other: np.ndarray, rng: np.random.Generator,
         settings: ViewSettings = ViewSettings()) -> np.ndarray:
    """One augmented view ``(T, F)`` float32 in [-1, 1] of ``window`` ``(T, F)``; ``other`` may be mixed in."""
    half = settings.range_db / 2.0
    db = (np.asarray(window, np.float64) - 1.0) * half                       # dB under the window's peak
    if rng.random() < settings.mix_probability:
        gain = rng.uniform(*settings.mix_gain_db)
        power = 10.0 ** (db / 10.0) + 10.0 ** (((np.asarray(other, np.float64) - 1.0) * half + gain) / 10.0)
        db = 10.0 * np.log10(power)
    num_frames, num_bins = db.shape
    stretch = np.exp(rng.uniform(-np.log1p(settings.warp), np.log1p(settings.warp)))
    source = np.clip((np.arange(num_bins) - rng.uniform(-settings.shift_bins, settings.shift_bins)) / stretch,
                     0, num_bins - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, num_bins - 1)
    weight = source - low
    db = db[:, low] * (1.0 - weight) + db[:, high] * weight
    db = np.roll(db, rng.integers(-settings.roll_frames, settings.roll_frames + 1), axis=0)
    out = np.maximum(db - db.max(), -settings.range_db) / half + 1.0
    _mask(out, rng, settings.mask_frames, axis=0)
    _mask(out, rng, settings.mask_bins, axis=1)
    return out.astype(np.float32)


def _mask(x: np.ndarray, rng: np.random.Generator, widest: int, axis: int) -> None:
    """Set a band of up to ``widest`` rows (axis 0) or columns (axis 1) of ``x``, and at most a quarter of them,
    to -1, in place."""
    size = x.shape[axis]
    width = int(rng.integers(0, min(widest, size // 4) + 1))
    start = int(rng.integers(0, size - width + 1))
    index = [slice(None), slice(None)]
    index[axis] = slice(start, start + width)
    x[tuple(index)] = -1.0


def view_pairs(windows: np.ndarray, batch_size: int, rng: np.random.Generator,
               settings: ViewSettings = ViewSettings()) -> np.ndarray:
    """``batch_size`` random windows of ``windows`` ``(N, T, F)``, two views each: ``(batch_size, 2, T, F)``."""
    picks = rng.integers(0, len(windows), batch_size)
    others = rng.integers(0, len(windows), (batch_size, 2))
    return np.stack([[view(windows[i], windows[o], rng, settings) for o in pair] for i, pair in zip(picks, others)])
