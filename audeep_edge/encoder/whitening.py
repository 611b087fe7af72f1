"""Partial whitening of an embedding part: damp the few directions that dominate it on unlabelled audio.

The standardised dimensions of the codebook and of the t-RAE are strongly correlated on real audio: a few shared
directions (overall level, broadband energy) carry most of the variance, so a linear probe or a nearest-class-mean
enrolment on them hears mostly those. Partial ZCA whitening, ``z -> V diag((λ + ε)^(-a/2)) Vᵀ z`` over the corpus
covariance's eigenvectors ``V`` and eigenvalues ``λ`` (``a = 1``: full whitening, ``a = 0``: none), evens that out
without dropping a direction. Directions beyond the top ``rank`` share the gain of a direction without corpus
variance, ``c = ε^(-a/2)``, so the graph is two thin dense layers beside a scaling:
``c·z + ((z - m) V_k) diag(g_k - c) V_kᵀ``.

The fused bundles compute it in their graph and ship its parameters (``whitening.npz``): novelty scoring undoes
it (:meth:`EmbeddingWhitening.undo`), because the damped directions are much of what tells a new sound from the
room. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.errors import ModelError

WHITENING_FILE = "whitening.npz"


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

    def undo(self, y: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`apply`: (N, D) whitened -> (N, D) standardised."""
        m = self.mean @ self.basis
        along = (y @ self.basis + (self.gains - self.tail_gain) * m) / self.gains  # Vᵀz
        return (y - ((along - m) * (self.gains - self.tail_gain)) @ self.basis.T) / self.tail_gain


@dataclass(frozen=True)
class EmbeddingWhitening:
    """The whitening of each part of an embedding: part name -> (its span, its :class:`PartialWhitening`)."""

    parts: dict[str, tuple[slice, PartialWhitening]]

    def undo(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> the same with every whitened part back to its standardised values.

        Raises
        ------
        ModelError : the parts reach past the embeddings' D (a whitening of another model).
        """
        out = np.array(embeddings, dtype=np.float32, ndmin=2)
        reach = max(span.stop for span, _ in self.parts.values())
        if reach > out.shape[1]:
            raise ModelError(f"the bundle's whitening covers up to dimension {reach}, the embeddings have "
                             f"{out.shape[1]}; rebuild the bundle")
        for span, whitening in self.parts.values():
            out[:, span] = whitening.undo(out[:, span])
        return out

    def save(self, directory: Path) -> Path:
        """Write ``directory/whitening.npz`` (the bases as float16: half the bytes, undone to ~1e-3)."""
        arrays = {}
        for name, (span, w) in self.parts.items():
            arrays.update({f"{name}/span": np.array([span.start, span.stop]), f"{name}/mean": w.mean,
                           f"{name}/basis": w.basis.astype(np.float16), f"{name}/gains": w.gains,
                           f"{name}/tail_gain": np.array(w.tail_gain)})
        path = Path(directory) / WHITENING_FILE
        np.savez(path, **arrays)
        return path


def read_whitening(bundle_dir: str | Path) -> EmbeddingWhitening | None:
    """The bundle's ``whitening.npz`` (None when its embedding is not whitened).

    Raises
    ------
    ModelError : an unreadable or inconsistent file.
    """
    path = Path(bundle_dir) / WHITENING_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        parts = {}
        for name in sorted({key.split("/")[0] for key in arrays}):
            start, stop = (int(v) for v in arrays[f"{name}/span"])
            w = PartialWhitening(arrays[f"{name}/mean"].astype(np.float32), arrays[f"{name}/basis"].astype(np.float32),
                                 arrays[f"{name}/gains"].astype(np.float32), float(arrays[f"{name}/tail_gain"]))
            if not (0 <= start < stop and w.mean.shape == (stop - start,) and w.basis.shape[0] == stop - start
                    and w.gains.shape == (w.basis.shape[1],) and np.all(w.gains > 0) and w.tail_gain > 0):
                raise ValueError(f"part {name!r} has inconsistent shapes or gains")
            if not all(np.all(np.isfinite(a)) for a in (w.mean, w.basis, w.gains, w.tail_gain)):
                raise ValueError(f"part {name!r} holds values that are not finite")
            parts[name] = (slice(start, stop), w)
        if not parts:
            raise ValueError("it holds no parts")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); rebuild the bundle") from None
    return EmbeddingWhitening(parts)
