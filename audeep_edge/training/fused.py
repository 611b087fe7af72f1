"""The codebook encoder and a t-RAE side by side in one graph: ``(B, T, 2F)`` -> ``(B, 2K + 2F + P·R)``.

The two see different things: the codebook pools textures and band levels over the window (everyday sounds),
the t-RAE follows the order of frames in a window scaled to its own maximum (short events such as words). The
t-RAE's representation is pooled in P ways (:data:`TRAE_POOLING`: the mean and the maximum over the window of the
representation after every frame; auDeep's is the one after the last frame, where a short sound is half
forgotten).
The graph reads the stacked input of normalization ``db+audeep-minmax`` (:func:`~audeep_edge.features.encoder_input`):
the window's absolute level (:func:`~audeep_edge.features.level_features`, for the codebook) beside auDeep's
per-window scaling of it (:func:`~audeep_edge.features.window_features`, what the t-RAE was trained on). The device
computes both; the graph holds no per-window division, which full int8 could not compute (in-graph, its 0.6 dB
input step and quantised intermediate ranges took the int8 bundle's spoken digits from 56 to 44 %). Each part is
standardised by corpus statistics, then partially whitened on them (:mod:`~audeep_edge.encoder.whitening`:
:data:`WHITENING` per part), before the concatenation, so one int8 range fits the whole vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from audeep_edge.features.normalize import LEVEL_FLOOR_DB, STACKED, encoder_input
from audeep_edge.training.codebook import Codebook
from audeep_edge.training.codebook import encoder_model as codebook_model
from audeep_edge.bundle import embedding_spans
from audeep_edge.encoder.whitening import EmbeddingWhitening, PartialWhitening, WhiteningSettings

#: how far each part is whitened: the codebook's 1280 dimensions lightly, each t-RAE part's 1024 more (power 0.15
#: on the codebook gave back 2.3 points of ESC-10 1-shot and cost 2.6 of digits linear; docs/generalisation.md)
WHITENING = {"codebook": WhiteningSettings(power=0.25), "t-rae": WhiteningSettings(power=0.5)}
#: how the t-RAE's encoder can summarise a window (``pooled_encoder_model``): auDeep's representation of the final
#: states, or the representation of the state after every frame averaged or maximised over the window
POOLING = ("final", "mean", "max")
#: the default's: the mean and maximum beside the codebook gave spoken digits +4.0 points linear and +2.2 5-shot
#: over the final state (docs/generalisation.md)
TRAE_POOLING = ("mean", "max")


def trae_part(pooling: str) -> str:
    """The embedding part of one pooling of the t-RAE (``t-rae`` for auDeep's own, ``t-rae-mean``, ``t-rae-max``)."""
    return "t-rae" if pooling == "final" else f"t-rae-{pooling}"


@dataclass
class FusedEncoder:
    """A codebook and a t-RAE run (``run_dir``) pooled as ``pooling`` says, with the t-RAE parts' corpus ``centre``
    and ``scale`` (P·R,), and each part's corpus ``whitening`` (by part name; a part without one is passed on
    standardised)."""

    codebook: Codebook
    run_dir: Path
    clip_below: float
    pooling: tuple[str, ...] = TRAE_POOLING
    centre: np.ndarray | None = None
    scale: np.ndarray | None = None
    whitening: dict[str, PartialWhitening] = field(default_factory=dict)
    normalization: ClassVar[str] = STACKED

    def __post_init__(self) -> None:
        from audeep_edge.training.runs import load_autoencoder

        self.autoencoder = load_autoencoder(self.run_dir)

    @property
    def embedding_size(self) -> int:
        return sum(self.embedding_parts.values())

    @property
    def embedding_parts(self) -> dict[str, int]:
        """The codebook's span, then each t-RAE pooling's (``outputs.embedding_parts`` of the bundle)."""
        size = self.autoencoder.ae_config.representation_size()
        return {"codebook": self.codebook.embedding_size, **{trae_part(name): size for name in self.pooling}}

    def inputs(self, db: np.ndarray) -> np.ndarray:
        """(N, T, F) absolute-dB windows (a corpus's) -> (N, T, 2F) inputs, as the device computes them from power."""
        return np.stack([encoder_input(10.0 ** (w / 10.0), STACKED, self.clip_below) for w in db])

    def model(self, window_frames: int, *, inference: bool = False):
        """Keras ``(B, T, 2F)`` -> ``(B, D)``; ``inference``: the t-RAE as the batch-1 graph the converter takes."""
        import keras
        from keras import ops

        from audeep_edge.training.autoencoders.models import pooled_encoder_model
        from audeep_edge.training.quantize import gru_graph

        bands = self.codebook.kernel.shape[1]
        inputs = keras.Input((window_frames, 2 * bands), batch_size=1 if inference else None)
        level_db = inputs[:, :, :bands] * -LEVEL_FLOOR_DB
        trae = (gru_graph.pooled_encoder_model if inference else pooled_encoder_model)(self.autoencoder, self.pooling)
        pooled = trae(inputs[:, :, bands:])
        recurrent = ops.concatenate([pooled[name] for name in self.pooling], axis=-1)
        if self.centre is not None:
            recurrent = (recurrent - self.centre.astype("float32")) * (1.0 / self.scale).astype("float32")
        parts = {"codebook": codebook_model(self.codebook, window_frames)(level_db),
                 **dict(zip(map(trae_part, self.pooling), ops.split(recurrent, len(self.pooling), axis=-1)))}
        parts = [whitening_layer(self.whitening[name], part, name.replace("-", "_")) if name in self.whitening
                 else part for name, part in parts.items()]
        return keras.Model(inputs, ops.concatenate(parts, axis=-1), name="fused_encoder")

    def standardise(self, windows: np.ndarray) -> None:
        """Set the t-RAE parts' centre and scale, then each part's :data:`WHITENING`, from (N, T, 2F) inputs of
        unlabelled audio."""
        self.centre = self.scale = None
        self.whitening = {}
        raw = self.embed(windows)
        k = self.codebook.embedding_size
        self.centre, self.scale = raw[:, k:].mean(0), np.maximum(raw[:, k:].std(0), 1e-3)
        standardised = dict(zip(self.embedding_parts, [raw[:, :k], *np.split((raw[:, k:] - self.centre) / self.scale,
                                                                              len(self.pooling), axis=1)]))
        self.whitening = {name: PartialWhitening.fit(part, WHITENING["codebook" if name == "codebook" else "t-rae"])
                          for name, part in standardised.items()}

    def embedding_whitening(self) -> EmbeddingWhitening | None:
        """Each part's whitening with its span of the embedding (what the bundle ships), or None before
        :meth:`standardise`."""
        if not self.whitening:
            return None
        spans = embedding_spans(self.embedding_parts, self.embedding_size)
        return EmbeddingWhitening({name: (spans[name], w) for name, w in self.whitening.items()})

    def embed(self, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, T, 2F) inputs -> (N, D) embeddings, float32."""
        model = self.model(windows.shape[1])
        return np.asarray(model.predict(windows, batch_size=batch_size, verbose=0), dtype=np.float32)


def whitening_layer(whitening: PartialWhitening, z, name: str):
    """:meth:`PartialWhitening.apply` on a Keras tensor (B, D): a scaling beside two dense layers (``name``: their
    prefix)."""
    import keras

    project = keras.layers.Dense(whitening.basis.shape[1], name=f"{name}_directions")
    expand = keras.layers.Dense(whitening.basis.shape[0], use_bias=False, name=f"{name}_gains")
    out = whitening.tail_gain * z + expand(project(z))
    project.set_weights([whitening.basis, -(whitening.mean @ whitening.basis)])
    expand.set_weights([(whitening.gains - whitening.tail_gain)[:, None] * whitening.basis.T])
    return out
