"""Embedding decoding and the 2-D projection drawn on the dashboard's embedding map (numpy only)."""

from __future__ import annotations

import base64
import binascii

import numpy as np

# dtypes a device may name in ``embedding_dtype``; always little-endian on the wire.
WIRE_DTYPES = ("float16", "float32", "float64", "int8", "uint8")


def decode_embedding(window: dict) -> np.ndarray | None:
    """Embedding carried by a window payload, or ``None`` when it has none or it is malformed.

    Parameters
    ----------
    window : decoded ``window`` JSON; the embedding is ``embedding`` (list of numbers) or
        ``embedding_b64`` (base64 of little-endian values) with ``embedding_dtype`` (default float32).

    Returns
    -------
    (D,) float32 array of finite values, or None.
    """
    if "embedding" in window:
        try:
            vector = np.asarray(window["embedding"], dtype=np.float32)
        except (TypeError, ValueError):
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
    if vector.ndim != 1 or vector.size < 2 or not np.all(np.isfinite(vector)):
        return None
    return vector


class PcaProjector:
    """PCA of a device's recent embeddings onto two axes whose signs stay put between refits.

    Refitting on a sliding set of embeddings can flip an axis (an eigenvector's sign is arbitrary),
    which would mirror the whole map from one update to the next; each new axis is therefore
    oriented to agree with the previous fit.
    """

    def __init__(self) -> None:
        self._axes: np.ndarray | None = None  # (2, D) of the previous fit

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Project embeddings onto their two main axes, scaled into [-1, 1].

        Parameters
        ----------
        embeddings : (N, D) float array.

        Returns
        -------
        (N, 2) float64 coordinates; all zeros when N < 2 or the embeddings do not vary.
        """
        n, dims = embeddings.shape
        centred = embeddings.astype(np.float64) - embeddings.mean(axis=0)
        if n < 2 or not np.any(centred):
            return np.zeros((n, 2))
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = np.zeros((2, dims))
        axes[: min(2, len(vt))] = vt[:2]
        if self._axes is not None and self._axes.shape == axes.shape:
            signs = np.where(np.sum(axes * self._axes, axis=1) < 0, -1.0, 1.0)
            axes *= signs[:, None]
        self._axes = axes
        points = centred @ axes.T
        scale = np.max(np.abs(points))
        return points / scale if scale > 0 else points

    def reset(self) -> None:
        """Forget the previous axes (the device changed model or embedding size)."""
        self._axes = None
