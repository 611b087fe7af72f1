"""k-nearest-neighbour novelty scorers (``knn``, ``lof``): raw scores of embeddings against a reference. numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _knn_space(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, metric: str) -> np.ndarray:
    """Standardised embeddings [shape=(n, D)], scaled to unit length for the cosine metric."""
    z = (x - mean) / scale
    if metric == "cosine":
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z.astype(np.float32)


def _distances(z: np.ndarray, reference: np.ndarray, metric: str) -> np.ndarray:
    """Distances [shape=(n, N)] between rows of z [shape=(n, D)] and of reference [shape=(N, D)]."""
    if metric == "cosine":
        return 1.0 - z @ reference.T
    sq = (z * z).sum(1)[:, None] - 2.0 * z @ reference.T + (reference**2).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def _own_density(reference: np.ndarray, k: int, metric: str, groups: np.ndarray, block: int = 512) -> np.ndarray:
    """Each reference window's mean distance to its k nearest reference windows of *other* groups [shape=(N,)].

    Other groups only: a window's neighbours in time (same recording stretch) are near-duplicates and would
    make every neighbourhood look infinitely dense. A window whose group is the whole reference skips only itself.
    """
    n = reference.shape[0]
    density = np.empty(n)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        d = _distances(reference[rows], reference, metric).astype(np.float64)
        same = groups[rows, None] == groups[None, :]
        same[np.all(same, axis=1)] = False
        d[same] = np.inf
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
        kk = min(k, max(1, int(np.isfinite(d).sum(axis=1).min())))
        density[rows] = np.partition(d, kk - 1, axis=1)[:, :kk].mean(axis=1)
    return density


@dataclass(frozen=True)
class KnnScorer:
    """Distance to the ``k`` nearest reference embeddings after per-dimension standardisation.

    ``knn``: the mean distance. ``lof`` (a simplified local outlier factor): that distance divided by the mean
    of the same quantity for those k neighbours, so a window is judged against how tightly the reference packs
    *where it lands*; sounds whose reference windows are spread out (a dog barking, speech) no longer drown
    the novelty of a sound in a tight corner of the space (measured in docs/adaptation.md).

    Attributes
    ----------
    mean, scale : (D,) standardisation of the reference.
    reference : (N, D) standardised reference (unit rows for ``cosine``).
    k : neighbours averaged.
    metric : ``euclidean`` or ``cosine`` (1 - cosine similarity).
    density : (N,) each reference window's own mean k-NN distance (``lof``); empty for ``knn``.
    """

    mean: np.ndarray
    scale: np.ndarray
    reference: np.ndarray
    k: int
    metric: str
    density: np.ndarray

    @property
    def method(self) -> str:
        return "lof" if self.density.size else "knn"

    @classmethod
    def fit(cls, x: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, k: int = 5, metric: str = "euclidean",
            relative: bool = True, groups: np.ndarray | None = None) -> "KnnScorer":
        """Reference x [shape=(N, D)], standardised with ``mean`` and ``scale`` [shape=(D,)]; ``relative`` gives
        ``lof``, whose reference densities ignore neighbours of the same ``groups`` [shape=(N,)] entry."""
        reference = _knn_space(x, mean, scale, metric)
        k = min(k, x.shape[0])
        groups = np.arange(x.shape[0]) if groups is None else np.asarray(groups)
        density = _own_density(reference, k, metric, groups) if relative else np.zeros(0)
        return cls(mean=mean, scale=scale, reference=reference, k=k, metric=metric, density=density)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores [shape=(n,)] of embeddings x [shape=(n, D)]."""
        d = _distances(_knn_space(x, self.mean, self.scale, self.metric), self.reference, self.metric)
        nearest = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
        distance = np.take_along_axis(d, nearest, axis=1).mean(axis=1).astype(np.float64)
        if not self.density.size:
            return distance
        return distance / np.maximum(self.density[nearest].mean(axis=1), 1e-12)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "reference": self.reference, "k": np.array(self.k),
                "metric": np.array(self.metric), "density": self.density}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "KnnScorer":
        return cls(mean=a["mean"], scale=a["scale"], reference=a["reference"], k=int(a["k"]), metric=str(a["metric"]),
                   density=a["density"])
