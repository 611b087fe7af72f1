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
#: far below it (spoken digits: median -96 dB, a quarter below -107 dB); digital silence (power 0) lands here.
FLOOR_DB = -250.0


def power_db(power: np.ndarray) -> np.ndarray:
    """Linear (mel) power [shape=(T, F)] -> dB of the absolute power, floored at :data:`FLOOR_DB`, float32.

    The input of level-aware encoders (bundle normalization ``"db"``): unlike :func:`window_features` it keeps
    how loud the window is.
    """
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB).astype(np.float32)


#: The lowest level of :func:`level_features` (the codebook's floor): quieter bins read as this level.
LEVEL_FLOOR_DB = -120.0


def level_features(power: np.ndarray) -> np.ndarray:
    """Linear (mel) power [shape=(T, F)] -> absolute dB clipped to [LEVEL_FLOOR_DB, 0] and divided by
    -LEVEL_FLOOR_DB, so in [-1, 0], float32: the level half of a ``db+audeep-minmax`` input, on the scale of the
    auDeep half, so that one int8 input range fits both (0.47 dB a step)."""
    return (np.clip(power_db(power), LEVEL_FLOOR_DB, 0.0) / -LEVEL_FLOOR_DB).astype(np.float32)


#: How a bundle turns a window's power into its encoder's input (``frontend.normalization`` in bundle.json).
NORMALIZATIONS = ("audeep-minmax", "db", "db+audeep-minmax")
#: The normalization whose input is two views of the window side by side over the bands, (T, 2F).
STACKED = "db+audeep-minmax"


def input_bands(normalization: str, bands: int) -> int:
    """Width of the encoder input of a window of ``bands`` bands: 2 x bands for the stacked normalization."""
    return 2 * bands if normalization == STACKED else bands


def encoder_input(power: np.ndarray, normalization: str, clip_below: float | None = None,
                  clip_above: float | None = None) -> np.ndarray:
    """One window's linear power [shape=(T, F)] -> the encoder input [shape=(T, F), stacked: (T, 2F)], float32.

    ``audeep-minmax``: :func:`window_features` (auDeep's per-window scaling; clip settings apply);
    ``db``: :func:`power_db` (absolute level kept; clip settings unused);
    ``db+audeep-minmax``: :func:`level_features` beside :func:`window_features` (encoders that read both, such
    as the codebook fused with a t-RAE: the device computes auDeep's scaling, the graph holds no division).
    """
    if normalization == "db":
        return power_db(power)
    if normalization == STACKED:
        return np.concatenate([level_features(power), window_features(power, clip_below, clip_above)], axis=1)
    return window_features(power, clip_below, clip_above)
