"""Deployable model bundle (runtime side): read and verify ``bundle.json``, check that the loaded model matches
it (:meth:`Bundle.check_model`) and front-end compatibility.

A bundle is a directory ``NAME.bundle/`` holding ``model.tflite``, ``bundle.json`` and optional extras
(``parity.json``, ``enrolled.npz``, ``baseline.npz``); see docs/design.md. This module imports neither
TensorFlow nor Keras: ``audeep-edge quantize`` writes bundles through :func:`write_manifest`, devices read
them through :func:`load_bundle`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audeep_edge import __version__
from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.features import NORMALIZATIONS, FrameGeometry, FrontendConfig, WindowFraming, input_bands

if TYPE_CHECKING:
    from audeep_edge.encoder import Encoder

SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
MODEL_FILE = "model.tflite"
INPUT_NAME = "spectrogram"
NORMALIZATION = "audeep-minmax"  # the default: per-window dB re max, clip, min-max (features.encoder_input)
PRECISIONS = ("float32", "float16", "dynamic", "int8", "edgetpu")
MAX_HOP_SECONDS = 3600.0  # the bound of ``--hop``

# FrontendConfig fields a bundle fixes; the offline-only ones (fixed_length, chunking) do not apply to streaming.
_MATCHED_FIELDS = ("sample_rate", "window_width", "window_overlap", "mel_bands", "clip_below", "clip_above",
                   "channels", "pre_emphasis")
_VERSIONED_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "ai-edge-litert")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle(WindowFraming):
    """A verified bundle: its window framing (``frontend`` with ``sample_rate`` always set, as the device resamples
    to it; the exact ``geometry`` the model was trained on; ``window_frames`` T; the streaming ``hop_seconds``;
    ``window_samples`` and ``window_seconds``) and its model.

    Attributes
    ----------
    path : bundle directory.
    manifest : the parsed ``bundle.json``.
    model_path : the ``.tflite`` file (hash checked by :func:`load_bundle`).
    labels : class names in probability order; empty when no classifier head is attached.
    embedding_size : D, length of the ``embedding`` output.
    precision : one of :data:`PRECISIONS`.
    embedding_parts : named spans of the embedding when it is several encoders side by side
        (``outputs.embedding_parts`` in ``bundle.json``: name -> size, in order); empty otherwise.
    accept_similarity : the cosine at which an enrolled class accepts a window when the device has no baseline,
        measured for this encoder (``enroll.accept_similarity``); None: the enrolment's fixed default.
    """

    path: Path
    manifest: dict
    model_path: Path
    labels: list[str]
    embedding_size: int
    precision: str
    embedding_parts: dict[str, slice]
    accept_similarity: float | None = None

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def normalization(self) -> str:
        """How window power becomes the encoder input (:func:`audeep_edge.features.encoder_input`)."""
        return self.manifest["frontend"].get("normalization", NORMALIZATION)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(1, T, F) of the ``spectrogram`` input."""
        return tuple(self.manifest["input"]["shape"])

    def check_model(self, encoder: Encoder) -> None:
        """Raise ModelError unless the loaded model has the input shape, embedding size and number of classes
        that ``bundle.json`` declares. The sha256 only proves the file is the one the manifest names; a model
        swapped in with its hash updated would otherwise fail at the first window."""
        where = f"{self.model_path} does not match {self.path / MANIFEST}"
        if tuple(encoder.input_shape) != self.input_shape:
            raise ModelError(f"{where}: the model takes input {list(encoder.input_shape)}, the manifest says "
                             f"{list(self.input_shape)}; re-export the bundle with `audeep-edge quantize`")
        outputs = encoder(np.zeros(self.input_shape[1:], dtype=np.float32))
        classes = 0 if outputs.probabilities is None else outputs.probabilities.size
        if outputs.embedding.size != self.embedding_size or classes != len(self.labels):
            raise ModelError(f"{where}: the model gives {outputs.embedding.size}-d embeddings and {classes} class "
                             f"probabilities, the manifest says {self.embedding_size} and {len(self.labels)} labels; "
                             "re-export the bundle with `audeep-edge quantize`")

    def check_compatible(self, frontend: FrontendConfig) -> None:
        """Raise ModelError naming the first setting where ``frontend`` differs from the bundle's.

        ``sample_rate=None`` in ``frontend`` means "whatever the bundle needs"; offline-only settings
        (fixed length, chunking) are not compared.
        """
        for field in _MATCHED_FIELDS:
            want, have = getattr(self.frontend, field), getattr(frontend, field)
            if field == "sample_rate" and have is None:
                continue
            if not _same(want, have):
                raise ModelError(
                    f"bundle {self.path} was trained with {field.replace('_', '-')}={want} but the front-end "
                    f"config asks for {have}; use the bundle's settings or a bundle made for {have}"
                )


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read a bundle directory (or its ``bundle.json``), check its schema and, by default, its model hash.

    Raises
    ------
    ModelError : missing or unreadable bundle, unsupported schema, missing fields, hash mismatch.
    """
    path = Path(path)
    directory = path.parent if path.name == MANIFEST else path
    manifest_path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelError(f"bundle {directory} does not exist; pass a directory made by `audeep-edge quantize`")
    if not manifest_path.is_file():
        raise ModelError(f"bundle {directory} has no {MANIFEST}; pass a directory made by `audeep-edge quantize`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not valid JSON ({exc}); re-copy the bundle") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{manifest_path} is not a JSON object; re-copy the bundle")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelError(f"{manifest_path} has schema_version {version!r}; this audeep-edge reads "
                         f"{SCHEMA_VERSION}: upgrade audeep-edge or re-export the bundle")
    try:
        return _parse(directory, manifest, verify)
    except (KeyError, TypeError, ValueError, OverflowError, ConfigError) as exc:  # Overflow: int(1e999)
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelError(f"{manifest_path} is malformed: {detail}; re-export the bundle") from None


def _parse(directory: Path, manifest: dict, verify: bool) -> Bundle:
    fe = manifest["frontend"]
    model_path = _model_path(directory, manifest.get("model_file", MODEL_FILE))
    if not model_path.is_file():
        raise ModelError(f"bundle {directory} lacks its model file {model_path.name}; re-copy the bundle")
    if verify and sha256_of(model_path) != manifest["sha256"]:
        raise ModelError(f"{model_path} does not match the sha256 in {MANIFEST} (corrupt or replaced); "
                         "re-copy the bundle or re-run `audeep-edge quantize`")
    if fe.get("normalization", NORMALIZATION) not in NORMALIZATIONS:
        raise ModelError(f"bundle {directory} uses normalization {fe['normalization']!r}; "
                         f"this audeep-edge supports {', '.join(NORMALIZATIONS)}")
    precision = manifest["precision"]
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    frontend = FrontendConfig(**{k: fe[k] for k in _MATCHED_FIELDS})
    n_fft, hop = int(fe["n_fft"]), int(fe["hop"])
    if not 0 < hop <= n_fft:
        raise ValueError(f"hop {hop} must be in (0, n_fft={n_fft}]")
    geometry = FrameGeometry(fs=int(fe["sample_rate"]), n_fft=n_fft, overlap=n_fft - hop)
    window_frames = int(fe["window_frames"])
    bins = input_bands(fe.get("normalization", NORMALIZATION), frontend.mel_bands or n_fft // 2 + 1)
    shape = [int(s) for s in manifest["input"]["shape"]]
    if shape != [1, window_frames, bins]:
        raise ValueError(f"input shape {shape} is not [1, window_frames={window_frames}, bins={bins}]")
    outputs = manifest["outputs"]
    labels = [str(label) for label in manifest.get("labels", [])]
    if len(labels) != int(outputs.get("probabilities", 0)):
        raise ValueError(f"{len(labels)} labels for {outputs.get('probabilities', 0)} class probabilities")
    embedding_size = int(outputs["embedding"])
    if embedding_size < 1:
        raise ValueError(f"embedding size {embedding_size} must be positive")
    parts = embedding_spans(outputs.get("embedding_parts", {}), embedding_size)
    hop_seconds = float(manifest.get("stream", {}).get("hop_seconds", 1.0))
    if not 0 < hop_seconds <= MAX_HOP_SECONDS:  # also refuses NaN
        raise ValueError(f"stream.hop_seconds {hop_seconds} must be in (0, {MAX_HOP_SECONDS:g}]")
    enroll = manifest.get("enroll", {})
    if not isinstance(enroll, dict):
        raise ValueError(f"enroll {enroll!r} must be a table")
    accept = enroll.get("accept_similarity")
    if accept is not None and (isinstance(accept, bool) or not isinstance(accept, (int, float))
                               or not -1 <= accept <= 1):  # also refuses NaN
        raise ValueError(f"enroll.accept_similarity {accept!r} must be a cosine in [-1, 1]")
    return Bundle(path=directory, manifest=manifest, model_path=model_path, frontend=frontend, geometry=geometry,
                  window_frames=window_frames, labels=labels, embedding_size=embedding_size,
                  precision=precision, embedding_parts=parts, hop_seconds=hop_seconds,
                  accept_similarity=None if accept is None else float(accept))


def embedding_spans(sizes: object, embedding_size: int) -> dict[str, slice]:
    """``outputs.embedding_parts`` (name -> size, in order) -> name -> span; sizes must add up to the embedding."""
    if not isinstance(sizes, dict) or not all(isinstance(n, str) and n for n in sizes):
        raise ValueError(f"embedding_parts {sizes!r} must map part names to sizes")
    parts, start = {}, 0
    for name, size in sizes.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"embedding part {name!r} has size {size!r}, not a positive integer")
        parts[name] = slice(start, start + size)
        start += size
    if parts and start != embedding_size:
        raise ValueError(f"embedding parts add up to {start}, not the embedding size {embedding_size}")
    return parts


def _model_path(directory: Path, name: object) -> Path:
    """``model_file`` as a path inside the bundle; a name that leaves the bundle is refused before anything
    is opened (``../../etc/passwd``, an absolute path, a symlink pointing out)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model_file {name!r} must be a file name")
    path = directory / name
    if Path(name).is_absolute() or not path.resolve().is_relative_to(directory.resolve()):
        raise ValueError(f"model_file {name!r} is outside the bundle directory")
    return path


def package_versions() -> dict[str, str]:
    """Versions of audeep-edge and the installed conversion/runtime packages (no imports)."""
    versions = {"audeep_edge": __version__}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(
    directory: Path,
    *,
    name: str,
    precision: str,
    frontend: FrontendConfig,
    geometry: FrameGeometry,
    window_frames: int,
    embedding_size: int,
    labels: list[str] | None = None,
    input_dtype: str = "float32",
    hop_seconds: float = 1.0,
    training: dict | None = None,
    normalization: str = NORMALIZATION,
    embedding_parts: dict[str, int] | None = None,
    accept_similarity: float | None = None,
) -> Path:
    """Write ``directory/bundle.json`` for the ``model.tflite`` already in ``directory``; return its path.

    Parameters
    ----------
    frontend : settings the model was trained with; ``sample_rate`` is taken from ``geometry.fs``.
    geometry : the training data's frame geometry (exact n_fft and hop in samples).
    window_frames : T of the (1, T, F) input.
    embedding_size : D of the ``embedding`` output.
    labels : class names in probability order (None or empty without a head).
    input_dtype : dtype of the ``spectrogram`` input tensor (int8/uint8 for edgetpu bundles).
    training : data set name, license, accuracy, run directory, ...
    normalization : one of :data:`~audeep_edge.features.NORMALIZATIONS` (how power becomes the model input).
    embedding_parts : name -> size of each encoder's span, in order, when the embedding is several side by side.
    accept_similarity : the enrolment's no-baseline threshold measured for this encoder
        (:func:`~audeep_edge.head.enroll.calibrated_accept`); None: the enrolment's fixed default.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    directory = Path(directory)
    labels = list(labels or [])
    bins = input_bands(normalization, frontend.mel_bands or geometry.n_fft // 2 + 1)
    outputs: dict = {"embedding": int(embedding_size)}
    if embedding_parts:
        outputs["embedding_parts"] = {name: int(size) for name, size in embedding_parts.items()}
    if labels:
        outputs["probabilities"] = len(labels)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "precision": precision,
        "model_file": MODEL_FILE,
        "sha256": sha256_of(directory / MODEL_FILE),
        "frontend": {
            "sample_rate": geometry.fs, "n_fft": geometry.n_fft, "hop": geometry.hop,
            "window_width": frontend.window_width, "window_overlap": frontend.window_overlap,
            "mel_bands": frontend.mel_bands, "clip_below": frontend.clip_below, "clip_above": frontend.clip_above,
            "channels": frontend.channels, "pre_emphasis": frontend.pre_emphasis,
            "window_frames": int(window_frames), "normalization": normalization,
        },
        "input": {"name": INPUT_NAME, "shape": [1, int(window_frames), bins], "dtype": input_dtype},
        "outputs": outputs,
        "labels": labels,
        "stream": {"hop_seconds": float(hop_seconds)},
        "training": dict(training or {}),
        "versions": package_versions(),
    }
    if accept_similarity is not None:
        manifest["enroll"] = _enroll_section(accept_similarity)
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def record_accept_similarity(directory: Path, accept_similarity: float) -> None:
    """Set ``enroll.accept_similarity`` in the manifest of the bundle at ``directory`` (replaced whole; the model
    and its checksum stay): for a bundle written before bundles recorded it."""
    path = Path(directory) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["enroll"] = _enroll_section(accept_similarity)
    partial = path.with_name(MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, path)


def _enroll_section(accept_similarity: float) -> dict:
    """The manifest's ``enroll`` table."""
    return {"accept_similarity": round(float(accept_similarity), 4)}
