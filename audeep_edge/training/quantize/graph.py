"""The deployable graph: spectrogram window ``(1, T, F)`` -> ``{"embedding": (1, D), "probabilities": (1, C)}``."""

from __future__ import annotations

from pathlib import Path

import keras

from audeep_edge.bundle import INPUT_NAME
from audeep_edge.errors import ModelError


def deployable_model(encoder: keras.Model, head: keras.Model | None = None) -> keras.Model:
    """Encoder (``(B, T, F)`` -> ``(B, D)`` or ``{"embedding": (B, D)}``) with the classifier head attached.

    Outputs a dict with ``embedding`` and, with a head, ``probabilities``; those keys become the output
    names of the TFLite signature.
    """
    window_shape = tuple(encoder.input_shape[1:])
    x = keras.Input(window_shape, name=INPUT_NAME)
    embedding = encoder(x)
    if isinstance(embedding, dict):
        embedding = embedding["embedding"]
    if len(embedding.shape) != 2:
        raise ModelError(f"the encoder gives embeddings of shape {tuple(embedding.shape)}, not one vector per "
                         "window (an f-RAE encodes each frame); quantize a t-RAE or ft-RAE run")
    outputs = {"embedding": embedding}
    if head is not None:
        if head.input_shape[-1] != embedding.shape[-1]:
            raise ModelError(f"the classifier head expects {head.input_shape[-1]} features but the encoder gives "
                             f"{embedding.shape[-1]}; pass a head trained on this run's representations")
        outputs["probabilities"] = head(embedding)
    return keras.Model(x, outputs, name="deployable")


def export_saved_model(model: keras.Model, directory: Path) -> None:
    """Write a SavedModel with one ``serving_default`` signature of fixed batch 1 (no Flex TensorList ops)."""
    import tensorflow as tf

    window_shape = tuple(model.input_shape[1:])
    spec = tf.TensorSpec((1, *window_shape), tf.float32, name=INPUT_NAME)
    model.export(str(directory), format="tf_saved_model", input_signature=[spec], verbose=False)
