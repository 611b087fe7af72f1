"""The codebook encoder: a representation learned without labels from hours of unlabelled audio in seconds.

Unsupervised feature learning by spherical k-means on whitened spectrogram patches (Coates & Ng 2012; Salamon &
Bello 2015 for environmental sound), on the absolute-level log mel frames of the streaming front end:

1. patches of ``P`` frames x all bands of the training corpus (silent ones left out), each minus its own mean;
2. PCA whitening to ``D`` dimensions (regularised: ``1e-3`` of the largest eigenvalue added);
3. ``K`` unit-length centroids by spherical k-means on the whitened, unit-length patches.

Encoding a window ``(T, F)`` of dB frames: the response of every patch (stride 1) to every centroid,
``relu(whiten(patch - mean) · centroid)``, pooled over time by mean and max (2K), then the mean and standard
deviation of each band's dB over the window (2F: the level and its variation that auDeep's per-window 0 dB
normalisation throws away); every dimension standardised by its mean and deviation over corpus windows.
All steps before the pooling are linear, so the patch responses are one ``Conv1D`` of kernel ``(P, F, K)``:
the encoder is a convolution, a ReLU, four reductions and an affine map (no recurrence: it quantises to int8
without unrolling and runs in ~1 ms per window).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from audeep_edge.features.normalize import LEVEL_FLOOR_DB
from audeep_edge.training.corpus import Corpus

log = logging.getLogger(__name__)

#: patches louder than the floor by less than this (dB) at their loudest are silence, left out of the codebook
SILENT_RANGE_DB = 30.0


@dataclass(frozen=True)
class CodebookSettings:
    """patch_frames P, centroids K, whitened dimensions D; windows of ``window_frames`` T sampled for the
    codebook (``sample_windows``) and for the standardisation (``stat_windows``); ``floor_db``: the encoder
    raises quieter frame values to this level (the front end's own floor is lower)."""

    patch_frames: int = 8
    centroids: int = 512
    whitened: int = 128
    window_frames: int = 124
    sample_windows: int = 4000
    max_patches: int = 200_000
    iterations: int = 15
    stat_windows: int = 2000
    floor_db: float = LEVEL_FLOOR_DB  # the level half of the fused encoder's input starts there too
    seed: int = 1


@dataclass(frozen=True)
class Codebook:
    """A trained codebook encoder.

    kernel (P, F, K) and bias (K,): the folded patch transform; centre, scale (2K + 2F,): the standardisation;
    floor_db: input values below it are raised to it first.
    """

    kernel: np.ndarray
    bias: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    floor_db: float
    normalization: ClassVar[str] = "db"
    clip_below: ClassVar[float | None] = None

    @property
    def embedding_size(self) -> int:
        return self.centre.size

    @property
    def embedding_parts(self) -> dict[str, int]:
        """One encoder: no parts."""
        return {}

    def inputs(self, db: np.ndarray) -> np.ndarray:
        """(N, T, F) absolute-dB windows (a corpus's) -> the encoder's inputs: the same windows."""
        return db

    def embedding_whitening(self) -> None:
        """Its embedding is standardised, not whitened."""
        return None

    def raw_features(self, windows: np.ndarray) -> np.ndarray:
        """(N, T, F) dB windows -> (N, 2K + 2F) pooled responses and band statistics, before standardising."""
        p, f, k = self.kernel.shape
        w = self.kernel.reshape(p * f, k)
        rows = []
        for window in np.maximum(np.asarray(windows, dtype=np.float32), self.floor_db):
            patches = np.lib.stride_tricks.sliding_window_view(window, p, axis=0)  # (T-P+1, F, P)
            patches = patches.transpose(0, 2, 1).reshape(len(patches), p * f)
            act = np.maximum(patches @ w + self.bias, 0.0)
            rows.append(np.concatenate([act.mean(0), act.max(0), window.mean(0), window.std(0)]))
        return np.asarray(rows, dtype=np.float32)

    def model(self, window_frames: int, *, inference: bool = False):
        """The Keras encoder (:func:`encoder_model`: no recurrence, so the parity reference is also the graph converted)."""
        return encoder_model(self, window_frames)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """(N, T, F) dB windows -> (N, 2K + 2F) standardised embeddings (the numpy reference of the model)."""
        return (self.raw_features(windows) - self.centre) / self.scale

    def save(self, path: Path) -> None:
        np.savez(path, kernel=self.kernel, bias=self.bias, centre=self.centre, scale=self.scale,
                 floor_db=self.floor_db)

    @classmethod
    def load(cls, path: Path) -> "Codebook":
        data = np.load(path)
        return cls(**{k: data[k] for k in ("kernel", "bias", "centre", "scale")}, floor_db=float(data["floor_db"]))


def _patches(windows: np.ndarray, p: int, floor_db: float) -> np.ndarray:
    """(N, T, F) -> (M, P·F) patches at stride 2, time-major (frame, band), floored; silent ones dropped."""
    patches = np.lib.stride_tricks.sliding_window_view(np.maximum(windows, floor_db), p, axis=1)[:, ::2]
    patches = patches.transpose(0, 1, 3, 2).reshape(-1, p * windows.shape[2])  # (N·T', P·F)
    return patches[patches.max(1) > floor_db + SILENT_RANGE_DB]


def robust_scale(stats: np.ndarray, k: int) -> np.ndarray:
    """(N, 2K + 2F) raw features -> (2K + 2F,) deviations, each at least a tenth of the median deviation of its
    group (mean responses, max responses, band statistics): a centroid the corpus rarely wakes would otherwise
    blow up on other audio, and the int8 range with it."""
    std = stats.std(axis=0) + 1e-3
    for start, stop in ((0, k), (k, 2 * k), (2 * k, None)):
        std[start:stop] = np.maximum(std[start:stop], 0.1 * np.median(std[start:stop]))
    return std


def spherical_kmeans(z: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """(M, D) unit rows -> (k, D) unit centroids; an emptied centroid restarts at a random row."""
    centroids = z[rng.choice(len(z), k, replace=False)]
    for _ in range(iterations):
        nearest = np.argmax(z @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, z)
        empty = np.bincount(nearest, minlength=k) == 0
        sums[empty] = z[rng.choice(len(z), int(empty.sum()))]
        centroids = sums / (np.linalg.norm(sums, axis=1, keepdims=True) + 1e-8)
    return centroids


def train_codebook(corpus: Corpus, settings: CodebookSettings = CodebookSettings()) -> Codebook:
    """Learn a codebook encoder from random windows of ``corpus`` (1-2 minutes on a 2-core x86 CPU)."""
    s, rng, started = settings, np.random.default_rng(settings.seed), time.perf_counter()
    windows = next(corpus.batches(s.sample_windows, s.window_frames, rng))
    x = _patches(windows, s.patch_frames, s.floor_db).astype(np.float64)
    x = x[rng.choice(len(x), size=min(s.max_patches, len(x)), replace=False)]
    x -= x.mean(axis=1, keepdims=True)
    mu = x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov((x - mu).T))
    eigenvalues, eigenvectors = eigenvalues[::-1][: s.whitened], eigenvectors[:, ::-1][:, : s.whitened]
    whiten = eigenvectors / np.sqrt(eigenvalues + 1e-3 * eigenvalues[0] + 1e-3)  # (P·F, D)
    z = (x - mu) @ whiten
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-8
    centroids = spherical_kmeans(z, s.centroids, s.iterations, rng)
    # relu(((p - mean(p)) - mu) @ whiten @ centroids.T) = relu(p @ W + b): mean removal folded into W
    n = x.shape[1]
    projection = whiten @ centroids.T
    w = projection - projection.mean(axis=0, keepdims=True)  # (I - 11ᵀ/n) @ projection
    bias = -(mu @ projection)
    bands = windows.shape[2]
    kernel = w.reshape(s.patch_frames, bands, s.centroids)
    raw = Codebook(kernel.astype(np.float32), bias.astype(np.float32), np.zeros(1), np.ones(1), s.floor_db)
    stats = raw.raw_features(next(corpus.batches(s.stat_windows, s.window_frames, rng)))
    codebook = Codebook(raw.kernel, raw.bias, stats.mean(0), robust_scale(stats, s.centroids), s.floor_db)
    log.info("codebook: %d patches of %d values, K=%d, D=%d, in %.0f s", len(x), n, s.centroids, s.whitened,
             time.perf_counter() - started)
    return codebook


def encoder_model(codebook: Codebook, window_frames: int):
    """Keras encoder ``(B, T, F)`` dB -> ``(B, 2K + 2F)`` embedding, on ``keras.ops`` (any backend)."""
    import keras
    from keras import ops

    p, bands, k = codebook.kernel.shape
    inputs = keras.Input((window_frames, bands))
    x = ops.maximum(inputs, codebook.floor_db)
    conv = keras.layers.Conv1D(k, p, padding="valid", name="codebook")
    act = ops.relu(conv(x))
    mean = ops.mean(x, axis=1)
    centred = x - ops.expand_dims(mean, 1)
    std = ops.sqrt(ops.mean(centred * centred, axis=1))
    # each part standardised before the concatenation, so one int8 range fits the whole embedding
    parts, start = [], 0
    for part in (ops.mean(act, axis=1), ops.max(act, axis=1), mean, std):
        stop = start + part.shape[-1]
        centre, scale = codebook.centre[start:stop], codebook.scale[start:stop]
        parts.append((part - centre.astype("float32")) * (1.0 / scale).astype("float32"))
        start = stop
    embedding = ops.concatenate(parts, axis=-1)
    model = keras.Model(inputs, embedding, name="codebook_encoder")
    conv.set_weights([codebook.kernel, codebook.bias])
    return model
