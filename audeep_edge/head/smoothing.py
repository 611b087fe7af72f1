"""Label smoothing over the last N windows: majority vote of the per-window labels, or an EMA of probabilities."""

from __future__ import annotations

from collections import deque

import numpy as np

SMOOTHING_MODES = ("majority", "ema")


class MajoritySmoother:
    """The most frequent top-1 class among the last ``windows`` windows; a tie goes to the most recent of the tied.

    Parameters
    ----------
    windows : N >= 1 (1 returns each window's own label).
    """

    def __init__(self, windows: int) -> None:
        self._recent: deque[int] = deque(maxlen=windows)
        self._probabilities: deque[np.ndarray] = deque(maxlen=windows)

    def reset(self) -> None:
        self._recent.clear()
        self._probabilities.clear()

    def confidence(self, index: int) -> float:
        """The smoothed probability of class ``index``: its mean probability over the last N windows."""
        return float(np.mean([p[index] for p in self._probabilities]))

    def update(self, probabilities: np.ndarray) -> int:
        """Add one window's probabilities [shape=(C,)]; return the smoothed class index."""
        self._recent.append(int(np.argmax(probabilities)))
        self._probabilities.append(np.asarray(probabilities, dtype=np.float64))
        counts: dict[int, int] = {}
        for label in self._recent:
            counts[label] = counts.get(label, 0) + 1
        best = max(counts.values())
        return next(label for label in reversed(self._recent) if counts[label] == best)


class EmaSmoother:
    """Argmax of the exponential moving average of the probabilities, ``alpha = 2 / (windows + 1)``
    (the EMA whose centre of mass matches an N-window average)."""

    def __init__(self, windows: int) -> None:
        self.alpha = 2.0 / (windows + 1.0)
        self._average: np.ndarray | None = None

    def reset(self) -> None:
        self._average = None

    def confidence(self, index: int) -> float:
        """The smoothed probability of class ``index``: its moving average."""
        return float(self._average[index])

    def update(self, probabilities: np.ndarray) -> int:
        """Add one window's probabilities [shape=(C,)]; return the smoothed class index."""
        p = np.asarray(probabilities, dtype=np.float64)
        self._average = p.copy() if self._average is None else self._average + self.alpha * (p - self._average)
        return int(np.argmax(self._average))


def make_smoother(mode: str, windows: int) -> MajoritySmoother | EmaSmoother:
    """``majority`` or ``ema`` smoother over ``windows`` windows."""
    return {"majority": MajoritySmoother, "ema": EmaSmoother}[mode](windows)
