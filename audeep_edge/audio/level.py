"""Signal level."""

import numpy as np

FLOOR_DBFS = -120.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dBFS); silence gives -120."""
    if samples.size == 0:
        return FLOOR_DBFS
    x = np.asarray(samples, dtype=np.float64).ravel()
    rms = float(np.sqrt(np.dot(x, x) / x.size))      # one BLAS pass, no squared copy (5 s at 44.1 kHz: 1.7 MB)
    return max(FLOOR_DBFS, 20.0 * np.log10(rms)) if rms > 0 else FLOOR_DBFS
