"""Channel mixing (auDeep's MEAN/DIFF/LEFT/RIGHT), correct for any channel count."""

from __future__ import annotations

import numpy as np

from audeep_edge.errors import ConfigError

CHANNEL_MODES = ("MEAN", "DIFF", "LEFT", "RIGHT")


def mix(samples: np.ndarray, mode: str = "MEAN") -> np.ndarray:
    """Reduce ``samples`` [shape=(n, channels)] (or 1-D mono) to one channel [shape=(n,)].

    MEAN averages all channels; LEFT/RIGHT pick channel 0/1; DIFF is channel 0 minus channel 1.
    Mono input is returned unchanged for every mode (auDeep's behaviour). Unlike auDeep, files with more
    than two channels are mixed properly instead of being flattened into an interleaved signal.
    """
    mode = mode.upper()
    if mode not in CHANNEL_MODES:
        raise ConfigError(f"unknown channel mode {mode!r}; use one of {', '.join(CHANNEL_MODES)}")
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    if mode == "MEAN":
        return samples.mean(axis=1)
    if mode == "LEFT":
        return samples[:, 0]
    if mode == "RIGHT":
        return samples[:, 1]
    return samples[:, 0] - samples[:, 1]
