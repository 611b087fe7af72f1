"""Fitting a novelty baseline on reference embeddings, calibrated on held-out folds.

The reference is split into folds of whole groups (files, or contiguous stretches of a recording, so that
overlapping windows never score each other); each fold is scored by a model fitted without it, and those
held-out raw scores are the percentile calibration of :class:`~audeep_edge.head.baseline.Baseline`. numpy only.
"""

from __future__ import annotations

import numpy as np

from audeep_edge.encoder.whitening import EmbeddingWhitening
from audeep_edge.errors import ConfigError, DataError
from audeep_edge.head.baseline import Baseline
from audeep_edge.head.gmm_scorer import GmmScorer
from audeep_edge.head.knn_scorer import KnnScorer

METHODS = ("lof", "knn", "gmm")
METRICS = ("euclidean", "cosine")
MIN_WINDOWS = 10
MAX_EXAMPLES = 1000


def _check_embeddings(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{where}: expected embeddings of shape (windows, D), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: embeddings contain NaN or infinity; check the model and the audio")
    return x


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and scale [shape=(D,)] of reference embeddings x [shape=(N, D)].

    The scale is floored at a tenth of the median standard deviation, so that a dimension that hardly varied in
    the reference (a saturated unit) cannot dominate every distance afterwards.
    """
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = max(0.1 * float(np.median(std)), 1e-6)
    return mean.astype(np.float32), np.maximum(std, floor).astype(np.float32)


def fold_of_each(n: int, groups: np.ndarray | None, folds: int, seed: int = 0) -> np.ndarray:
    """Fold index [shape=(n,)] per window: whole groups per fold, shuffled; contiguous blocks without groups.

    Parameters
    ----------
    groups : (n,) group id per window (the source file), or None for one recording (consecutive windows overlap,
        so each fold is a contiguous stretch of it).
    """
    if groups is not None:
        ids, index = np.unique(np.asarray(groups), return_inverse=True)
        if ids.size >= 2:
            order = np.random.default_rng(seed).permutation(ids.size)
            fold_of_group = np.empty(ids.size, dtype=int)
            fold_of_group[order] = np.arange(ids.size) % min(folds, ids.size)
            return fold_of_group[index]
    return np.arange(n) * folds // n


def fit_baseline(embeddings: np.ndarray, *, method: str = "lof", groups: np.ndarray | None = None,
                 folds: int = 5, k: int = 5, metric: str = "euclidean", components: int = 4, dims: int = 16,
                 seed: int = 0, meta: dict | None = None, space: EmbeddingWhitening | None = None) -> Baseline:
    """Fit a baseline on reference embeddings and calibrate it on held-out folds.

    Parameters
    ----------
    embeddings : (N, D) embeddings of normal audio, N >= :data:`MIN_WINDOWS`.
    method : ``lof`` (k-NN distance relative to the local density), ``knn`` (k-NN distance) or ``gmm``.
    groups : (N,) source of each window (file name), or None for one continuous recording in time order.
    folds : number of held-out folds for the calibration.
    k, metric : kNN neighbours and distance. components, dims : GMM components and PCA dimensions.
    meta : extra facts stored with the baseline.
    space : the bundle's whitening (``whitening.npz``): the scorer reads the embeddings with it undone, the level
        and energy directions it damps being much of what novelty is (docs/adaptation.md).

    Raises
    ------
    ConfigError : unknown method/metric or bad numbers. DataError : too few or non-finite embeddings.
    """
    if method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if folds < 2 or k < 1 or components < 1 or dims < 1:
        raise ConfigError("folds must be >= 2 and k, components, dims >= 1")
    given = _check_embeddings(embeddings, "baseline")
    x = space.undo(given) if space is not None else given
    if x.shape[0] < MIN_WINDOWS:
        raise DataError(f"only {x.shape[0]} windows of reference audio; a baseline needs at least {MIN_WINDOWS}: "
                        "record longer (--seconds) or pass more files")

    # One standardisation for all folds: it is a nuisance parameter, and re-estimating it without a fold that
    # holds most of one sound (contiguous folds of a recording) shifts the mean towards the other sounds and
    # skews the held-out scores.
    mean, scale = _standardiser(x)

    fold = fold_of_each(x.shape[0], groups, folds, seed)
    # lof's reference densities skip neighbours of the same file, or of the same stretch of one recording
    neighbourhood = np.asarray(groups) if groups is not None else fold

    def fit(part: np.ndarray) -> KnnScorer | GmmScorer:
        if method == "gmm":
            return GmmScorer.fit(x[part], mean, scale, components=components, dims=dims, seed=seed)
        return KnnScorer.fit(x[part], mean, scale, k=k, metric=metric, relative=method == "lof",
                             groups=neighbourhood[part])

    held_out = np.empty(x.shape[0])
    for f in np.unique(fold):
        test = fold == f
        held_out[test] = fit(~test).raw(x[test])
    info = {"windows": int(x.shape[0]), "embedding_size": int(x.shape[1]), "folds": int(np.unique(fold).size),
            "unwhitened": space is not None}
    examples = given[np.linspace(0, x.shape[0] - 1, min(x.shape[0], MAX_EXAMPLES)).round().astype(int)]
    return Baseline(scorer=fit(np.ones(x.shape[0], bool)), calibration=np.sort(held_out),
                    examples=examples.astype(np.float16), meta={**info, **(meta or {})}, space=space)
