"""dB conversion: relative to the maximum, clipped and min-max scaled (auDeep), or absolute (level-aware encoders)."""

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


#: Floor of :func:`power_db`. A full-scale sine is about -55 dB of this front end's power; quiet recordings peak
#: far below it (spoken digits: median -96 dB, a quarter below -107 dB), and auDeep's scaling, which the fused
#: encoder applies to these frames, needs the 60 dB under a window's peak. At -150 dB those bins were lost and
#: the t-RAE part scored 62.7 instead of 67.9 % on spoken digits; digital silence (power 0) still lands here.
FLOOR_DB = -250.0


def power_db(power: np.ndarray) -> np.ndarray:
    """Linear (mel) power [shape=(T, F)] -> dB of the absolute power, floored at :data:`FLOOR_DB`, float32.

    The input of level-aware encoders (bundle normalization ``"db"``): unlike :func:`window_features` it keeps
    how loud the window is.
    """
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB).astype(np.float32)


#: How a bundle turns a window's power into its encoder's input (``frontend.normalization`` in bundle.json).
NORMALIZATIONS = ("audeep-minmax", "db")


def encoder_input(power: np.ndarray, normalization: str, clip_below: float | None = None,
                  clip_above: float | None = None) -> np.ndarray:
    """One window's linear power [shape=(T, F)] -> the encoder input [shape=(T, F)], float32.

    ``audeep-minmax``: :func:`window_features` (auDeep's per-window scaling; clip settings apply);
    ``db``: :func:`power_db` (absolute level kept; clip settings unused).
    """
    if normalization == "db":
        return power_db(power)
    return window_features(power, clip_below, clip_above)
