"""Partial whitening of an embedding part: damp the few directions that dominate it on unlabelled audio.

The standardised dimensions of the codebook and of the t-RAE are strongly correlated on real audio: a few shared
directions (overall level, broadband energy) carry most of the variance, so a linear probe or a nearest-class-mean
enrolment on them hears mostly those. Partial ZCA whitening, ``z -> V diag((λ + ε)^(-a/2)) Vᵀ z`` over the corpus
covariance's eigenvectors ``V`` and eigenvalues ``λ`` (``a = 1``: full whitening, ``a = 0``: none), evens that out
without dropping a direction. Directions beyond the top ``rank`` share the gain of a direction without corpus
variance, ``c = ε^(-a/2)``, so the graph is two thin dense layers beside a scaling:
``c·z + ((z - m) V_k) diag(g_k - c) V_kᵀ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WhiteningSettings:
    """``power`` a, ``floor`` ε (in units of the standardised dimensions' variance), ``rank`` k."""

    power: float
    floor: float = 0.1
    rank: int = 128


@dataclass(frozen=True)
class PartialWhitening:
    """``mean`` (D,), ``basis`` V_k (D, k) and ``gains`` g_k (k,) of the top corpus directions; ``tail_gain`` c."""

    mean: np.ndarray
    basis: np.ndarray
    gains: np.ndarray
    tail_gain: float

    @classmethod
    def fit(cls, z: np.ndarray, settings: WhiteningSettings) -> "PartialWhitening":
        """Fit on (N, D) standardised features of unlabelled audio."""
        z = np.asarray(z, dtype=np.float64)
        mean = z.mean(0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(z - mean, rowvar=False))
        rank = min(settings.rank, z.shape[1])
        top = np.argsort(eigenvalues)[::-1][:rank]
        gains = (np.maximum(eigenvalues[top], 0.0) + settings.floor) ** (-settings.power / 2)
        return cls(mean.astype(np.float32), eigenvectors[:, top].astype(np.float32), gains.astype(np.float32),
                   float(settings.floor ** (-settings.power / 2)))

    def apply(self, z: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, D), in numpy."""
        return self.tail_gain * z + ((z - self.mean) @ self.basis) * (self.gains - self.tail_gain) @ self.basis.T

    def layer(self, z, name: str):
        """The same on a Keras tensor (B, D): a scaling beside two dense layers (``name``: their prefix)."""
        import keras

        project = keras.layers.Dense(self.basis.shape[1], name=f"{name}_directions")
        expand = keras.layers.Dense(self.basis.shape[0], use_bias=False, name=f"{name}_gains")
        out = self.tail_gain * z + expand(project(z))
        project.set_weights([self.basis, -(self.mean @ self.basis)])
        expand.set_weights([(self.gains - self.tail_gain)[:, None] * self.basis.T])
        return out
