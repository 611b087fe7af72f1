"""A codebook encoder (+ a linear head) -> a bundle at one precision, with its parity report.

The same conversion (``convert_graph``), parity measure and manifest as ``audeep-edge quantize`` uses for
autoencoder runs; what differs is the graph (:func:`audeep_edge.training.codebook.encoder_model`, no recurrence)
and the bundle's ``normalization`` (``db``: the encoder reads absolute dB frames).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from audeep_edge.bundle import MODEL_FILE, write_manifest
from audeep_edge.features.config import FrontendConfig
from audeep_edge.own_sounds.head import LinearHead
from audeep_edge.training.codebook import Codebook, encoder_model
from audeep_edge.training.corpus import FrontendSpec
from audeep_edge.training.quantize import edgetpu, flatbuffer
from audeep_edge.training.quantize.bundler import PARITY_FILE, convert_graph, use_tensorflow_backend
from audeep_edge.training.quantize.parity import TfliteSignature, parity


def deployable(codebook: Codebook, head: LinearHead | None, window_frames: int):
    """Keras graph ``spectrogram (1, T, F)`` -> ``{"embedding", "probabilities"}`` for the converter (the head:
    ``train``'s linear head, fitted on this encoder's embeddings)."""
    import keras

    from audeep_edge.training.quantize.graph import deployable_model

    classifier = None
    if head is not None:
        dense = keras.layers.Dense(len(head.bias), activation="softmax", name="head")
        classifier = keras.Sequential([keras.Input((codebook.embedding_size,)), dense])
        dense.set_weights([head.weights.T, head.bias])
    return deployable_model(encoder_model(codebook, window_frames), classifier)


def build_bundle(codebook: Codebook, head: LinearHead | None, labels: list[str], *, spec: FrontendSpec,
                 window_frames: int,
                 precision: str, calibration: np.ndarray, check: np.ndarray, check_labels: np.ndarray | None,
                 output: Path, name: str, training: dict, hop_seconds: float = 1.0) -> dict:
    """Convert, measure parity on ``check`` windows (N, T, F) dB, write ``output``; return the parity report.

    ``labels`` name the head's classes; ``check_labels`` (N,) are class names.
    ``calibration`` (M, T, F) dB windows set the int8 ranges (unlabelled audio: the training corpus).
    """
    use_tensorflow_backend()
    reference = deployable(codebook, head, window_frames)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".codebook-", dir=output.parent) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        model = convert_graph(reference, precision, calibration, work)
        seconds = time.perf_counter() - started
        expected = {k: np.asarray(v) for k, v in reference.predict(check, verbose=0, batch_size=32).items()}
        converted = TfliteSignature(model).predict(check)
        targets = None
        if check_labels is not None and head is not None:
            targets = np.array([labels.index(str(label)) for label in check_labels])
        report = {"precision": precision, "model_bytes": len(model), "conversion_seconds": round(seconds, 1),
                  "data": training.get("accuracy_data"), **parity(expected, converted, targets),
                  "ops": dict(sorted(flatbuffer.op_counts(model).items())), "edgetpu": edgetpu.check_ops(model).to_dict()}
        staging = work / "bundle"
        staging.mkdir()
        (staging / MODEL_FILE).write_bytes(model)
        (staging / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
        classes = report.get("classes", {})
        frontend = FrontendConfig(window_width=spec.window_width, window_overlap=spec.window_overlap,
                                  mel_bands=spec.mel_bands, sample_rate=spec.sample_rate,
                                  pre_emphasis=spec.pre_emphasis, channels=spec.channels)
        write_manifest(staging, name=name, precision=precision, frontend=frontend,
                       geometry=frontend.geometry(spec.sample_rate), window_frames=window_frames,
                       embedding_size=codebook.embedding_size, labels=labels if head else [],
                       input_dtype="int8" if precision in ("int8", "edgetpu") else "float32",
                       hop_seconds=hop_seconds, normalization="db",
                       training={**training, "accuracy": classes.get("accuracy_quantized"),
                                 "accuracy_float": classes.get("accuracy_float")})
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    return report
