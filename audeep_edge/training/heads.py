"""Classifier heads for on-device labels: a directory that ``quantize`` attaches to the encoder.

Layout of ``HEAD_DIR``:

- ``head.keras``  keras.Model ``(B, D)`` raw representations -> ``(B, C)`` class probabilities (softmax), with the
  training standardisation inside as a fixed Normalization layer;
- ``labels.json`` label names in class-index order (JSON list);
- ``head.json``   how it was trained: options, data set, feature size, cross-validation scores if measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from audeep_edge.errors import ModelError

MODEL_FILE = "head.keras"
LABELS_FILE = "labels.json"
INFO_FILE = "head.json"
SCHEMA_VERSION = 1


def save_head(head_dir: str | Path, model, labels: Sequence[str], info: dict[str, Any]) -> Path:
    """Write ``model`` (keras.Model), ``labels`` and ``info`` into ``head_dir`` (created if needed).

    ``info`` is stored in head.json with ``schema_version``, ``labels`` and ``feature_size`` added.
    Raises ModelError if the model's output size differs from ``len(labels)`` or the directory is not writable.
    """
    head_dir = Path(head_dir)
    if model.output_shape[-1] != len(labels):
        raise ModelError(f"the head has {model.output_shape[-1]} outputs but {len(labels)} labels were given")
    info = {"schema_version": SCHEMA_VERSION, "labels": list(labels), "feature_size": int(model.input_shape[-1]),
            **info}
    try:
        head_dir.mkdir(parents=True, exist_ok=True)
        model.save(head_dir / MODEL_FILE)
        (head_dir / LABELS_FILE).write_text(json.dumps(list(labels), indent=1) + "\n")
        (head_dir / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    except OSError as exc:
        raise ModelError(f"{head_dir}: cannot write the classifier head ({exc.strerror or exc})") from None
    return head_dir


def read_labels(head_dir: str | Path) -> list[str]:
    """The label names of a head directory, in class-index order; ModelError if missing or invalid."""
    path = Path(head_dir) / LABELS_FILE
    try:
        labels = json.loads(path.read_text())
    except OSError:
        raise ModelError(f"{path}: missing; pass a directory written by `audeep-edge mlp train`") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{path}: expected a non-empty JSON list of label names")
    return labels


def read_head_info(head_dir: str | Path) -> dict[str, Any]:
    """The contents of ``head.json`` (empty dict if the file is absent); ModelError if it is not valid JSON."""
    path = Path(head_dir) / INFO_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None


def load_head(head_dir: str | Path):
    """Load a classifier head.

    Returns
    -------
    (model, labels) : keras.Model ``(B, D) -> (B, C)`` probabilities, and the C label names.

    Raises
    ------
    ModelError : missing or unreadable files, or a model whose output size differs from the labels.
    """
    import keras

    head_dir = Path(head_dir)
    if not head_dir.is_dir():
        raise ModelError(f"{head_dir}: no such head directory; create one with `audeep-edge mlp train`")
    labels = read_labels(head_dir)
    path = head_dir / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing; pass a directory written by `audeep-edge mlp train`")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises ValueError, OSError, zipfile errors, ... for a broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: cannot load the head model ({reason})") from None
    if model.output_shape[-1] != len(labels):
        raise ModelError(f"{head_dir}: head.keras has {model.output_shape[-1]} outputs but labels.json lists "
                         f"{len(labels)} labels")
    return model, labels
