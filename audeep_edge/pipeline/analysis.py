"""One window -> features -> encoder -> head -> the schema v1 ``window`` payload (computing, not publishing)."""

from __future__ import annotations

import base64
import time

import numpy as np

from audeep_edge.audio import level_dbfs
from audeep_edge.encoder import Encoder
from audeep_edge.features import window_features
from audeep_edge.head import make_smoother, top_k
from audeep_edge.pipeline.windows import Window
from audeep_edge.sinks.payload import SCHEMA_VERSION

EMBEDDING_DTYPES = ("off", "float16", "float32")
EMBEDDING_ENCODINGS = ("json", "base64")


def embedding_fields(embedding: np.ndarray, dtype: str, encoding: str) -> dict:
    """``embedding`` (a JSON list) or ``embedding_b64`` (little-endian bytes), plus ``embedding_dtype``."""
    values = embedding.astype("<f2" if dtype == "float16" else "<f4")
    if encoding == "base64":
        return {"embedding_b64": base64.b64encode(values.tobytes()).decode("ascii"), "embedding_dtype": dtype}
    return {"embedding": values.astype(np.float64).tolist(), "embedding_dtype": dtype}


class WindowAnalyzer:
    """Runs the model and the head on windows and builds their payloads.

    Parameters
    ----------
    encoder : the loaded model.
    labels : class names (empty for an encoder without a classifier head: label fields are then null).
    clip_below, clip_above : the bundle's dB clipping.
    device_id : the ``device_id`` of every payload.
    top_k : entries in ``top_k``.
    smoothing, smoothing_windows : ``majority`` or ``ema`` over that many windows.
    embeddings : ``off``, ``float16`` or ``float32``.
    embedding_encoding : ``json`` or ``base64``.
    """

    def __init__(self, encoder: Encoder, labels: list[str], *, clip_below: float | None, clip_above: float | None,
                 device_id: str, top_k: int = 3, smoothing: str = "majority", smoothing_windows: int = 5,
                 embeddings: str = "off", embedding_encoding: str = "base64") -> None:
        self.encoder, self.labels = encoder, labels
        self.clip_below, self.clip_above = clip_below, clip_above
        self.device_id, self.top_k = device_id, top_k
        self.embeddings, self.embedding_encoding = embeddings, embedding_encoding
        self._smoother = make_smoother(smoothing, smoothing_windows)

    def __call__(self, window: Window) -> dict:
        """The ``window`` payload of ``window`` (wall time = now)."""
        out = self.encoder(window_features(window.power, self.clip_below, self.clip_above))
        payload = {"schema_version": SCHEMA_VERSION, "device_id": self.device_id, "seq": window.index,
                   "audio_time": round(window.audio_time, 6), "wall_time": time.time()}
        if out.probabilities is not None and self.labels:
            best = int(np.argmax(out.probabilities))
            payload.update(label=self.labels[best], confidence=round(float(out.probabilities[best]), 4),
                           top_k=top_k(out.probabilities, self.labels, self.top_k),
                           smoothed_label=self.labels[self._smoother.update(out.probabilities)])
        else:
            payload.update(label=None, confidence=None, top_k=[], smoothed_label=None)
        payload["dbfs"] = round(float(level_dbfs(window.samples)), 2)
        if self.embeddings != "off":
            payload.update(embedding_fields(out.embedding, self.embeddings, self.embedding_encoding))
        return payload
