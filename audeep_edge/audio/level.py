"""Signal level."""

import numpy as np

FLOOR_DBFS = -120.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dBFS), in [-120, 0]: silence gives -120,
    float audio beyond full scale (|x| > 1, clipped by any converter) gives 0."""
    if samples.size == 0:
        return FLOOR_DBFS
    x = np.asarray(samples, dtype=np.float64).ravel()
    rms = float(np.sqrt(np.dot(x, x) / x.size))      # one BLAS pass, no squared copy (5 s at 44.1 kHz: 1.7 MB)
    return min(0.0, max(FLOOR_DBFS, 20.0 * np.log10(rms))) if rms > 0 else FLOOR_DBFS


#: decoded lossy audio (Vorbis, MP3) of a recording clipped at full scale overshoots by a few percent: not a fault
CODEC_OVERSHOOT = 1.1


def beyond_full_scale(samples: np.ndarray) -> float | None:
    """The peak magnitude when some sample exceeds full scale by more than codec overshoot (|x| > 1.1), else
    None."""
    peak = max(float(samples.max()), -float(samples.min())) if samples.size else 0.0  # no |x| copy per block
    return peak if peak > CODEC_OVERSHOOT else None
