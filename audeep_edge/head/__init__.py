"""Stage 4: class probabilities -> labels (top-k, smoothing over windows). numpy only."""

from audeep_edge.head.scores import top_k
from audeep_edge.head.smoothing import SMOOTHING_MODES, EmaSmoother, MajoritySmoother, make_smoother

__all__ = ["top_k", "SMOOTHING_MODES", "EmaSmoother", "MajoritySmoother", "make_smoother"]
