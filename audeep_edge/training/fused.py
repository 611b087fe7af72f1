"""The codebook encoder and a t-RAE side by side in one graph: ``(B, T, F)`` absolute dB -> ``(B, 2K + 2F + R)``.

The two see different things: the codebook pools textures and band levels over the window (everyday sounds),
the t-RAE follows the order of frames in a window scaled to its own maximum (short events such as words).
The graph reads the absolute-dB frames of the codebook bundles (``normalization: "db"``) and scales the t-RAE's
copy inside, as auDeep does (:func:`audeep_scale`), so the device computes one front end for both. Each part is
standardised by corpus statistics before the concatenation, so one int8 range fits the whole vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.features.normalize import FLOOR_DB
from audeep_edge.training.codebook import Codebook
from audeep_edge.training.codebook import encoder_model as codebook_model

#: Range (dB) under which a window counts as flat: it maps to about 0, as ``minmax_scale`` maps a constant window.
FLAT_RANGE_DB = 1.0
#: dB values within this of the front end's floor are silence (no power), not a level.
SILENCE_MARGIN_DB = 1.0


def audeep_scale(db, clip_below: float):
    """Keras ops: ``(B, T, F)`` dB -> auDeep's per-window input in [-1, 1] (relative to the window's maximum,
    raised to ``clip_below``, min-max scaled), as :func:`audeep_edge.features.normalize.window_features` computes
    it from the power.

    Bins at the front end's floor (no power: zero padding, bands above a recording's Nyquist) go to
    ``clip_below``, where auDeep's eps puts them in real audio; raised only to the absolute floor, they would sit
    above ``clip_below`` in a quiet window (a spoken digit peaks near -90 dB: the floor is then -60 dB below it).
    Written without selects and with a divisor of at least 1 dB, so that full int8 computes it too (a select of
    a constant and a divisor that quantises to zero broke it).
    """
    from keras import ops

    silent = ops.minimum(ops.relu(100.0 * (FLOOR_DB + SILENCE_MARGIN_DB - db)), 1.0)  # 1 at the floor, 0 above
    relative = db - ops.max(db, axis=(1, 2), keepdims=True)
    relative = ops.maximum(relative + clip_below * silent, clip_below)
    low = ops.min(relative, axis=(1, 2), keepdims=True)
    span = ops.max(relative, axis=(1, 2), keepdims=True) - low
    return (2.0 * (relative - low) - span) / ops.maximum(span, FLAT_RANGE_DB)


@dataclass
class FusedEncoder:
    """A codebook and a t-RAE run (``run_dir``) with the t-RAE embedding's corpus ``centre`` and ``scale`` (R,)."""

    codebook: Codebook
    run_dir: Path
    clip_below: float
    centre: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        from audeep_edge.training.runs import load_autoencoder

        self.autoencoder = load_autoencoder(self.run_dir)

    @property
    def embedding_size(self) -> int:
        return sum(self.embedding_parts.values())

    @property
    def embedding_parts(self) -> dict[str, int]:
        """The codebook's span, then the t-RAE's (``outputs.embedding_parts`` of the bundle)."""
        return {"codebook": self.codebook.embedding_size, "t-rae": self.autoencoder.ae_config.representation_size()}

    def model(self, window_frames: int, *, inference: bool = False):
        """Keras ``(B, T, F)`` dB -> ``(B, D)``; ``inference``: the t-RAE as the batch-1 graph the converter takes."""
        import keras
        from keras import ops

        from audeep_edge.training.autoencoders import encoder_model as trae_model
        from audeep_edge.training.quantize import gru_graph

        inputs = keras.Input((window_frames, self.codebook.kernel.shape[1]), batch_size=1 if inference else None)
        trae = (gru_graph.encoder_model if inference else trae_model)(self.autoencoder)
        recurrent = trae(audeep_scale(inputs, self.clip_below))["embedding"]
        if self.centre is not None:
            recurrent = (recurrent - self.centre.astype("float32")) * (1.0 / self.scale).astype("float32")
        embedding = ops.concatenate([codebook_model(self.codebook, window_frames)(inputs), recurrent], axis=-1)
        return keras.Model(inputs, embedding, name="fused_encoder")

    def standardise(self, windows: np.ndarray) -> None:
        """Set the t-RAE part's centre and scale from (N, T, F) dB windows of unlabelled audio."""
        self.centre = self.scale = None
        raw = self.embed(windows)[:, self.codebook.embedding_size:]
        self.centre, self.scale = raw.mean(0), np.maximum(raw.std(0), 1e-3)

    def embed(self, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, T, F) dB windows -> (N, D) embeddings, float32."""
        model = self.model(windows.shape[1])
        return np.asarray(model.predict(windows, batch_size=batch_size, verbose=0), dtype=np.float32)
