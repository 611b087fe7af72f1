"""dB conversion relative to the maximum, clipping and min-max scaling to [-1, 1] (auDeep's steps 7 and 9)."""

from __future__ import annotations

import numpy as np


def to_db(power: np.ndarray, clip_below: float | None = None, clip_above: float | None = None) -> np.ndarray:
    """Power [shape=(T, F)] -> dB relative to its maximum (max = 0 dB), floored/ceiled.

    Values at or below the smallest positive value are raised to it (auDeep's eps). An all-zero input
    (digital silence; auDeep crashes) gives a constant matrix at the floor (``clip_below`` or 0 dB).
    """
    positive = power[power > 0]
    if positive.size == 0:
        return np.full(power.shape, clip_below if clip_below is not None else 0.0)
    s = np.maximum(power, positive.min())
    db = 10.0 * np.log10(s / s.max())
    if clip_below is not None:
        db = np.maximum(db, clip_below)
    if clip_above is not None:
        db = np.minimum(db, clip_above)
    return db


def minmax_scale(db: np.ndarray) -> np.ndarray:
    """Map to [-1, 1] by min and max; a (nearly) constant input (range <= 1e-4) becomes ``x - min`` (≈ 0)."""
    lo, hi = float(db.min()), float(db.max())
    if hi - lo <= 1e-4:
        return (db - lo).astype(np.float32)
    return (2.0 * (db - lo) / (hi - lo) - 1.0).astype(np.float32)


def window_features(power: np.ndarray, clip_below: float | None = None, clip_above: float | None = None) -> np.ndarray:
    """One window (or unchunked clip) of linear power [shape=(T, F)] -> encoder input in [-1, 1], float32."""
    return minmax_scale(to_db(power, clip_below, clip_above))
