"""A level-aware encoder (the codebook, or the codebook fused with a t-RAE) + a linear head -> a bundle at one
precision, with its parity report.

The same conversion and parity report (:func:`~audeep_edge.training.quantize.bundle_writer.convert_and_write`,
with the Edge TPU compiler for edgetpu where it is installed) and manifest as ``audeep-edge quantize`` uses for
autoencoder runs; what differs is the graph (the encoder's ``model``) and the bundle's ``normalization`` (the
encoder's: ``db``, absolute dB frames, for the codebook; ``db+audeep-minmax``, those beside auDeep's scaling, for
the fused encoder).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np

from audeep_edge.bundle import MODEL_FILE, write_manifest
from audeep_edge.encoder.whitening import EmbeddingWhitening
from audeep_edge.features.config import FrontendConfig
from audeep_edge.head.enroll import calibrated_accept
from audeep_edge.own_sounds.head import LinearHead
from audeep_edge.training.quantize.bundle_writer import convert_and_write, staged_bundle
from audeep_edge.training.quantize.bundler import use_tensorflow_backend
from audeep_edge.training.quantize.parity import TfliteSignature


class DbEncoder(Protocol):
    """An encoder of level-aware windows: :class:`~audeep_edge.training.codebook.Codebook` or
    :class:`~audeep_edge.training.fused.FusedEncoder`; ``normalization`` and ``clip_below`` say how the device
    turns a window's power into its input (:func:`~audeep_edge.features.encoder_input`)."""

    normalization: str
    clip_below: float | None

    @property
    def embedding_size(self) -> int: ...

    @property
    def embedding_parts(self) -> dict[str, int]: ...

    def inputs(self, db: np.ndarray) -> np.ndarray: ...

    def model(self, window_frames: int, *, inference: bool = False): ...

    def embedding_whitening(self) -> EmbeddingWhitening | None: ...


def deployable(encoder: DbEncoder, head: LinearHead | None, window_frames: int, *, inference: bool = False):
    """Keras graph ``spectrogram (1, T, F)`` -> ``{"embedding", "probabilities"}`` for the converter (the head:
    ``train``'s linear head, fitted on this encoder's embeddings); ``inference``: the graph to convert."""
    import keras

    from audeep_edge.training.quantize.graph import deployable_model

    classifier = None
    if head is not None:
        dense = keras.layers.Dense(len(head.bias), activation="softmax", name="head")
        classifier = keras.Sequential([keras.Input((encoder.embedding_size,)), dense])
        dense.set_weights([head.weights.T, head.bias])
    return deployable_model(encoder.model(window_frames, inference=inference), classifier)


def build_bundle(encoder: DbEncoder, head: LinearHead | None, labels: list[str], *, spec: FrontendConfig,
                 window_frames: int,
                 precision: str, calibration: np.ndarray, check: np.ndarray, check_labels: np.ndarray | None,
                 output: Path, name: str, training: dict, hop_seconds: float = 1.0,
                 enrol: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Convert, measure parity on ``check`` encoder inputs (N, T, F'), write ``output``; return the parity report.

    ``labels`` name the head's classes; ``check_labels`` (N,) are class names.
    ``calibration`` (M, T, F') encoder inputs set the int8 ranges (unlabelled audio: the training corpus).
    ``spec``: the corpus's front end; the bundle takes its ``clip_below`` from the encoder.
    ``enrol``: labelled encoder inputs (N, T, F') and their labels (N,); the converted model's embeddings of them
    set the bundle's no-baseline enrolment threshold (:func:`~audeep_edge.head.enroll.calibrated_accept`;
    ``report["accept_similarity"]``): each precision's own, as int8 shifts the cosines.
    """
    use_tensorflow_backend()
    reference = deployable(encoder, head, window_frames)
    graph = deployable(encoder, head, window_frames, inference=True)
    targets = None
    if check_labels is not None and head is not None:
        targets = np.array([labels.index(str(label)) for label in check_labels])
    with staged_bundle(output, ".codebook-") as staging:
        report, _ = convert_and_write(reference, graph, staging, precision=precision, calibration=calibration,
                                      windows=check, targets=targets, data=training.get("accuracy_data"))
        classes = report.get("classes", {})
        if enrol is not None:
            embeddings = TfliteSignature((staging / MODEL_FILE).read_bytes()).predict(enrol[0])["embedding"]
            report["accept_similarity"] = calibrated_accept(embeddings, enrol[1])
        spec = dataclasses.replace(spec, clip_below=encoder.clip_below)
        write_manifest(staging, name=name, precision=precision, frontend=spec,
                       geometry=spec.geometry(spec.sample_rate), window_frames=window_frames,
                       embedding_size=encoder.embedding_size, labels=labels if head else [],
                       input_dtype="int8" if precision in ("int8", "edgetpu") else "float32",
                       hop_seconds=hop_seconds, normalization=encoder.normalization,
                       embedding_parts=encoder.embedding_parts,
                       accept_similarity=report.get("accept_similarity"),
                       training={**training, "accuracy": classes.get("accuracy_quantized"),
                                 "accuracy_float": classes.get("accuracy_float")})
        whitening = encoder.embedding_whitening()
        if whitening is not None:  # for novelty scoring to undo (audeep_edge.encoder.whitening)
            whitening.save(staging)
    return report
