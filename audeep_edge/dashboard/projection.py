"""Embedding decoding and the 2-D projection drawn on the dashboard's embedding map (numpy only)."""

from __future__ import annotations

import base64
import binascii

import numpy as np

# dtypes a device may name in ``embedding_dtype``; always little-endian on the wire.
WIRE_DTYPES = ("float16", "float32", "float64", "int8", "uint8")
MAX_DIMENSIONS = 4096  # longer vectors are not drawn (each device keeps 150 of them)


def decode_embedding(window: dict) -> np.ndarray | None:
    """Embedding carried by a window payload, or ``None`` when it has none or it is malformed.

    Parameters
    ----------
    window : decoded ``window`` JSON; the embedding is ``embedding`` (list of numbers) or
        ``embedding_b64`` (base64 of little-endian values) with ``embedding_dtype`` (default float32).

    Returns
    -------
    (D,) float32 array of finite values, 2 <= D <= ``MAX_DIMENSIONS``, or None.
    """
    if "embedding" in window:
        try:
            vector = np.asarray(window["embedding"], dtype=np.float32)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float range
            return None
    elif "embedding_b64" in window:
        dtype = window.get("embedding_dtype", "float32")
        if dtype not in WIRE_DTYPES:
            return None
        try:
            raw = base64.b64decode(window["embedding_b64"], validate=True)
            vector = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float32)
        except (TypeError, ValueError, binascii.Error):
            return None
    else:
        return None
    if vector.ndim != 1 or not 2 <= vector.size <= MAX_DIMENSIONS or not np.all(np.isfinite(vector)):
        return None
    return vector


class PcaProjector:
    """Projects a device's recent embeddings onto their top-2 principal subspace, refit after refit.

    The subspace is found by subspace (power) iteration warm-started from the previous fit. That costs
    a few (N, D) matrix products instead of an SVD (which took 60 ms to seconds for 150 x 1024 on a busy
    2-core box, against well under 1 ms here), and it lets the map evolve smoothly: an SVD's axes can
    flip sign or swap between refits and mirror or rotate the whole map from one update to the next.
    """

    COLD_ITERATIONS = 40
    WARM_ITERATIONS = 6

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._axes: np.ndarray | None = None  # (D, 2) orthonormal basis of the previous fit

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Project embeddings onto their two main axes, scaled into [-1, 1].

        Parameters
        ----------
        embeddings : (N, D) float array.

        Returns
        -------
        (N, 2) float32 coordinates; all zeros when N < 2 or the embeddings do not vary.
        """
        n, dims = embeddings.shape
        centred = np.asarray(embeddings, dtype=np.float32)
        centred = centred - centred.mean(axis=0)
        if n < 2 or not np.any(centred):
            return np.zeros((n, 2), dtype=np.float32)
        warm = self._axes is not None and self._axes.shape == (dims, 2)
        axes = self._axes if warm else np.random.default_rng(self._seed).standard_normal((dims, 2), dtype=np.float32)
        for _ in range(self.WARM_ITERATIONS if warm else self.COLD_ITERATIONS):
            axes = _orthonormal(centred.T @ (centred @ axes))
        self._axes = axes
        points = centred @ axes
        scale = np.max(np.abs(points))
        return points / scale if scale > 0 else points

    def reset(self) -> None:
        """Forget the previous axes (the device changed model or embedding size)."""
        self._axes = None


def _orthonormal(axes: np.ndarray) -> np.ndarray:
    """Gram-Schmidt on the two columns of ``axes`` (D, 2); a degenerate column becomes zero."""
    first, second = axes[:, 0], axes[:, 1]
    first = first / (np.linalg.norm(first) or 1.0)
    second = second - first * (first @ second)
    second = second / (np.linalg.norm(second) or 1.0)
    return np.stack([first, second], axis=1)
