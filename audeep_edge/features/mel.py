"""auDeep's mel filter bank: HTK mel scale from 0 Hz to fs/2, floor bin indices, peak-1 triangles."""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def _edges_hz(fs: int, n_mels: int) -> np.ndarray:
    return mel_to_hz(np.linspace(0.0, hz_to_mel(fs / 2.0), n_mels + 2))


@lru_cache(maxsize=16)
def mel_filterbank(*, fs: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular filters, peak 1, no area normalisation.

    Returns
    -------
    fbank : np.ndarray [shape=(n_mels, n_fft // 2 + 1)], read-only.
    """
    bins = np.floor((n_fft + 1) * _edges_hz(fs, n_mels) / fs).astype(int)
    fbank = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(1, n_mels + 1):
        lo, mid, hi = bins[m - 1], bins[m], bins[m + 1]
        k = np.arange(lo, mid)
        fbank[m - 1, k] = (k - lo) / (mid - lo)
        k = np.arange(mid, hi)
        fbank[m - 1, k] = (hi - k) / (hi - mid)
    empty = int(np.count_nonzero(fbank.sum(axis=1) == 0))
    if empty:
        log.warning("%d of %d mel bands are empty at fs=%d, n_fft=%d (kept, as auDeep)", empty, n_mels, fs, n_fft)
    fbank.setflags(write=False)
    return fbank


def mel_centre_frequencies(*, fs: int, n_mels: int) -> np.ndarray:
    """Centre frequencies in Hz of the ``n_mels`` filters [shape=(n_mels,)]."""
    return _edges_hz(fs, n_mels)[1:-1]
