"""One window -> features -> encoder -> head -> the schema v1 ``window`` payload and the events it causes
(computing, not publishing)."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from audeep_edge.audio import level_dbfs
from audeep_edge.bundle import NORMALIZATION
from audeep_edge.encoder import Encoder
from audeep_edge.features import encoder_input
from audeep_edge.head import make_smoother, top_k
from audeep_edge.pipeline.windows import Window
from audeep_edge.sinks.payload import SCHEMA_VERSION

if TYPE_CHECKING:
    from audeep_edge.head.adaptation import Adaptation

log = logging.getLogger(__name__)

EMBEDDING_DTYPES = ("off", "float16", "float32")
EMBEDDING_ENCODINGS = ("json", "base64")


def embedding_fields(embedding: np.ndarray, dtype: str, encoding: str) -> dict:
    """``embedding`` (a JSON list) or ``embedding_b64`` (little-endian bytes), plus ``embedding_dtype``."""
    values = embedding.astype("<f2" if dtype == "float16" else "<f4")
    if encoding == "base64":
        return {"embedding_b64": base64.b64encode(values.tobytes()).decode("ascii"), "embedding_dtype": dtype}
    return {"embedding": values.astype(np.float64).tolist(), "embedding_dtype": dtype}


@dataclass
class Analysis:
    """A window's ``window`` payload, its ``embedding`` [shape=(D,), float32] and the ``event`` payloads it causes
    (``label_change``, ``novel``); ``labels`` is the new label list when the enrolled labels changed just before
    this window, else None."""

    payload: dict
    embedding: np.ndarray
    events: list[dict] = field(default_factory=list)
    labels: list[str] | None = None


class WindowAnalyzer:
    """Runs the model and the head on windows and builds their payloads.

    Parameters
    ----------
    encoder : the loaded model (any callable window -> :class:`~audeep_edge.encoder.Encoded`).
    labels : class names (empty for an encoder without a classifier head: label fields are then null).
    clip_below, clip_above : the bundle's dB clipping.
    normalization : the bundle's ``normalization`` (:func:`~audeep_edge.features.encoder_input`).
    device_id : the ``device_id`` of every payload.
    top_k : entries in ``top_k``.
    smoothing, smoothing_windows : ``majority`` or ``ema`` over that many windows.
    embeddings : ``off``, ``float16`` or ``float32``.
    embedding_encoding : ``json`` or ``base64``.
    adaptation : enrolled labels and novelty scoring (``audeep-edge enroll`` / ``baseline fit``), or None.
    """

    def __init__(self, encoder: Encoder, labels: list[str], *, clip_below: float | None, clip_above: float | None,
                 device_id: str, top_k: int = 3, smoothing: str = "majority", smoothing_windows: int = 5,
                 embeddings: str = "off", embedding_encoding: str = "base64",
                 adaptation: Adaptation | None = None, normalization: str = NORMALIZATION) -> None:
        self.encoder, self.labels = encoder, labels
        self.clip_below, self.clip_above, self.normalization = clip_below, clip_above, normalization
        self.device_id, self.top_k = device_id, top_k
        self.embeddings, self.embedding_encoding = embeddings, embedding_encoding
        self.adaptation = adaptation
        self._smoother = make_smoother(smoothing, smoothing_windows)
        self._smoothed: str | None = None

    def __call__(self, window: Window) -> Analysis:
        """Analyse ``window`` (wall time = now)."""
        out = self.encoder(encoder_input(window.power, self.normalization, self.clip_below, self.clip_above))
        probabilities, labels, novelty, changed = out.probabilities, self.labels, None, None
        if self.adaptation is not None:
            if self.adaptation.poll():
                self._smoother.reset()  # the label list changed under the smoother
                changed = self.adaptation.labels(self.labels)
                log.info("labels now: %s", ", ".join(changed))
            probabilities = self.adaptation.classify(out.embedding, out.probabilities)
            labels = self.adaptation.labels(self.labels)
            novelty = self.adaptation.novelty(out.embedding)
        payload = {"schema_version": SCHEMA_VERSION, "device_id": self.device_id, "seq": window.index,
                   "audio_time": round(window.audio_time, 6), "wall_time": time.time()}
        if probabilities is not None and labels:
            best, smoothed = int(np.argmax(probabilities)), self._smoother.update(probabilities)
            payload.update(label=labels[best], confidence=round(float(probabilities[best]), 4),
                           top_k=top_k(probabilities, labels, self.top_k), smoothed_label=labels[smoothed],
                           smoothed_confidence=round(self._smoother.confidence(smoothed), 4))
        else:
            payload.update(label=None, confidence=None, top_k=[], smoothed_label=None, smoothed_confidence=None)
        payload["dbfs"] = round(float(level_dbfs(window.samples)), 2)
        if novelty is not None:
            payload["novelty"] = round(novelty, 4)
        if self.embeddings != "off":
            payload.update(embedding_fields(out.embedding, self.embeddings, self.embedding_encoding))
        events = self._events(payload, novelty)
        if novelty is not None:  # between a novel sound's start and end events (Home Assistant's binary sensor)
            payload["novel"] = self.adaptation.detector.active
        return Analysis(payload, out.embedding, events, labels=changed)

    def _events(self, payload: dict, novelty: float | None) -> list[dict]:
        head = {"schema_version": SCHEMA_VERSION, "device_id": self.device_id, "wall_time": payload["wall_time"]}
        events = []
        label = payload["smoothed_label"]
        if label is not None and self._smoothed is not None and label != self._smoothed:
            events.append({**head, "type": "label_change", "seq": payload["seq"], "audio_time": payload["audio_time"],
                           "label": label, "previous": self._smoothed})
        self._smoothed = label
        novel = self.adaptation.event(payload["audio_time"], novelty) if self.adaptation is not None else None
        if novel is not None:
            events.append({**head, "type": "novel", "seq": payload["seq"], **novel.payload()})
        return events
