"""Novelty score: how unlike the device's "normal" sound a window is, as a percentile in [0, 1].

A *baseline* is fitted on device from embeddings of ordinary audio (minutes of the room, or files). A window's raw
score says how far it lies from that reference: its mean distance to the k nearest reference embeddings relative
to how densely the reference packs there (``lof``, the default), the plain distance (``knn``), or its negative
log-likelihood under a Gaussian mixture in a whitened PCA space plus a residual term (``gmm``). Raw scores are
calibrated into percentiles of *held-out* reference scores: the reference is split into folds of whole groups
(files, or contiguous stretches of a recording, so that overlapping windows never score each other), each fold
is scored by a model fitted without it, and ``score(x)`` is the fraction of those held-out scores below x's raw
score. Ordinary windows thus score ~uniformly in [0, 1]; anything stranger than all of the reference scores 1.

:class:`NoveltyDetector` turns per-window scores into ``novel`` events (threshold held for a minimum duration,
released with hysteresis). numpy only: the device never imports scikit-learn or TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from audeep_edge.errors import ConfigError, DataError, ModelError

BASELINE_FILE = "baseline.npz"
METHODS = ("lof", "knn", "gmm")
METRICS = ("euclidean", "cosine")
MIN_WINDOWS = 10
MAX_EXAMPLES = 1000
FORMAT_VERSION = 1


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


def _knn_space(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, metric: str) -> np.ndarray:
    """Standardised embeddings [shape=(n, D)], scaled to unit length for the cosine metric."""
    z = (x - mean) / scale
    if metric == "cosine":
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z.astype(np.float32)


def _distances(z: np.ndarray, reference: np.ndarray, metric: str) -> np.ndarray:
    """Distances [shape=(n, N)] between rows of z [shape=(n, D)] and of reference [shape=(N, D)]."""
    if metric == "cosine":
        return 1.0 - z @ reference.T
    sq = (z * z).sum(1)[:, None] - 2.0 * z @ reference.T + (reference**2).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def _own_density(reference: np.ndarray, k: int, metric: str, groups: np.ndarray, block: int = 512) -> np.ndarray:
    """Each reference window's mean distance to its k nearest reference windows of *other* groups [shape=(N,)].

    Other groups only: a window's neighbours in time (same recording stretch) are near-duplicates and would
    make every neighbourhood look infinitely dense. A window whose group is the whole reference skips only itself.
    """
    n = reference.shape[0]
    density = np.empty(n)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        d = _distances(reference[rows], reference, metric).astype(np.float64)
        same = groups[rows, None] == groups[None, :]
        same[np.all(same, axis=1)] = False
        d[same] = np.inf
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
        kk = min(k, max(1, int(np.isfinite(d).sum(axis=1).min())))
        density[rows] = np.partition(d, kk - 1, axis=1)[:, :kk].mean(axis=1)
    return density


@dataclass(frozen=True)
class KnnScorer:
    """Distance to the ``k`` nearest reference embeddings after per-dimension standardisation.

    ``knn``: the mean distance. ``lof`` (a simplified local outlier factor): that distance divided by the mean
    of the same quantity for those k neighbours, so a window is judged against how tightly the reference packs
    *where it lands*; sounds whose reference windows are spread out (a dog barking, speech) no longer drown
    the novelty of a sound in a tight corner of the space (measured in docs/adaptation.md).

    Attributes
    ----------
    mean, scale : (D,) standardisation of the reference.
    reference : (N, D) standardised reference (unit rows for ``cosine``).
    k : neighbours averaged.
    metric : ``euclidean`` or ``cosine`` (1 - cosine similarity).
    density : (N,) each reference window's own mean k-NN distance (``lof``); empty for ``knn``.
    """

    mean: np.ndarray
    scale: np.ndarray
    reference: np.ndarray
    k: int
    metric: str
    density: np.ndarray

    @property
    def method(self) -> str:
        return "lof" if self.density.size else "knn"

    @classmethod
    def fit(cls, x: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, k: int = 5, metric: str = "euclidean",
            relative: bool = True, groups: np.ndarray | None = None) -> "KnnScorer":
        """Reference x [shape=(N, D)], standardised with ``mean`` and ``scale`` [shape=(D,)]; ``relative`` gives
        ``lof``, whose reference densities ignore neighbours of the same ``groups`` [shape=(N,)] entry."""
        reference = _knn_space(x, mean, scale, metric)
        k = min(k, x.shape[0])
        groups = np.arange(x.shape[0]) if groups is None else np.asarray(groups)
        density = _own_density(reference, k, metric, groups) if relative else np.zeros(0)
        return cls(mean=mean, scale=scale, reference=reference, k=k, metric=metric, density=density)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores [shape=(n,)] of embeddings x [shape=(n, D)]."""
        d = _distances(_knn_space(x, self.mean, self.scale, self.metric), self.reference, self.metric)
        nearest = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
        distance = np.take_along_axis(d, nearest, axis=1).mean(axis=1).astype(np.float64)
        if not self.density.size:
            return distance
        return distance / np.maximum(self.density[nearest].mean(axis=1), 1e-12)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "scale": self.scale, "reference": self.reference, "k": np.array(self.k),
                "metric": np.array(self.metric), "density": self.density}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "KnnScorer":
        return cls(mean=a["mean"], scale=a["scale"], reference=a["reference"], k=int(a["k"]), metric=str(a["metric"]),
                   density=a["density"])


@dataclass(frozen=True)
class GmmScorer:
    """Negative log-likelihood of a probabilistic-PCA-style model: a full-covariance Gaussian mixture in the top
    principal directions (whitened) plus an isotropic Gaussian for what those directions do not explain, so a
    window that is new along a minor direction still scores high.

    Attributes
    ----------
    mean, scale : (D,) standardisation. center : (D,) PCA centre; basis : (D, d) orthonormal principal axes;
    axis_std : (d,) their standard deviations; residual_var : per-dimension variance left outside the basis.
    weights : (K,); means : (K, d); precision_chol : (K, d, d) with ``(w - mu) @ P`` white; log_det : (K,) of P.
    """

    mean: np.ndarray
    scale: np.ndarray
    center: np.ndarray
    basis: np.ndarray
    axis_std: np.ndarray
    residual_var: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    precision_chol: np.ndarray
    log_det: np.ndarray
    method: str = field(default="gmm", init=False)

    @classmethod
    def fit(cls, x: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, components: int = 4, dims: int = 16,
            seed: int = 0, iterations: int = 200, reg: float = 1e-2) -> "GmmScorer":
        """Reference x [shape=(N, D)], standardised with ``mean`` and ``scale`` [shape=(D,)]."""
        z = ((x - mean) / scale).astype(np.float64)
        center = z.mean(axis=0)
        _, s, vt = np.linalg.svd(z - center, full_matrices=False)
        std = s / np.sqrt(max(z.shape[0] - 1, 1))
        keep = max(1, min(dims, int(np.count_nonzero(std > 1e-6 * std.max()))))
        basis, axis_std = vt[:keep].T, np.maximum(std[:keep], 1e-12)
        residual_var = max(float(np.sum(std[keep:] ** 2)) / max(z.shape[1] - keep, 1), 1e-12)
        white = (z - center) @ basis / axis_std
        # at least ~2 samples per free parameter of a component's covariance, else fewer components
        components = max(1, min(components, z.shape[0] // max(2, keep + 1)))
        weights, means, chol, log_det = _em(white, components, seed, iterations, reg)
        return cls(mean=mean, scale=scale, center=center.astype(np.float32), basis=basis.astype(np.float32),
                   axis_std=axis_std.astype(np.float32), residual_var=np.array(residual_var), weights=weights,
                   means=means, precision_chol=chol, log_det=log_det)

    def raw(self, x: np.ndarray) -> np.ndarray:
        zc = ((x - self.mean) / self.scale - self.center).astype(np.float64)
        coords = zc @ self.basis
        residual = np.maximum((zc**2).sum(axis=1) - (coords**2).sum(axis=1), 0.0)
        density = _component_log_density(coords / self.axis_std, self.weights, self.means, self.precision_chol,
                                          self.log_det)
        return -_logsumexp(density) + 0.5 * residual / float(self.residual_var)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _GMM_FIELDS}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "GmmScorer":
        return cls(**{name: a[name] for name in _GMM_FIELDS})


_GMM_FIELDS = ("mean", "scale", "center", "basis", "axis_std", "residual_var", "weights", "means", "precision_chol",
               "log_det")


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


def _component_log_density(z: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray,
                           log_det: np.ndarray) -> np.ndarray:
    """log(w_k N(z | mu_k, Sigma_k)) [shape=(n, K)] for z [shape=(n, d)]."""
    d = z.shape[1]
    white = np.matmul(z[None] - means[:, None, :], chol)  # (K, n, d)
    return (np.log(weights)[None] + log_det[None] - 0.5 * (white**2).sum(axis=2).T
            - 0.5 * d * np.log(2.0 * np.pi))


def _em(z: np.ndarray, components: int, seed: int, iterations: int, reg: float):
    """EM for a full-covariance mixture, k-means++ seeded; ``reg`` is added to each covariance's diagonal."""
    rng = np.random.default_rng(seed)
    n, d = z.shape
    centres = [z[rng.integers(n)]]
    for _ in range(1, components):
        d2 = np.min(((z[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2), axis=1)
        centres.append(z[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else z[rng.integers(n)])
    assign = np.argmin(((z[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2), axis=1)
    resp = np.eye(components)[assign]
    previous = -np.inf
    for _ in range(iterations):
        weights, means, chol, log_det = _m_step(z, resp, reg)
        log_density = _component_log_density(z, weights, means, chol, log_det)
        total = _logsumexp(log_density)
        resp = np.exp(log_density - total[:, None])
        mean_ll = float(total.mean())
        if mean_ll - previous < 1e-5:
            break
        previous = mean_ll
    return _m_step(z, resp, reg)


def _m_step(z: np.ndarray, resp: np.ndarray, reg: float):
    n, d = z.shape
    counts = resp.sum(axis=0) + 1e-10
    means = resp.T @ z / counts[:, None]
    diff = z[None] - means[:, None, :]  # (K, n, d)
    cov = np.matmul((resp.T[:, :, None] * diff).transpose(0, 2, 1), diff) / counts[:, None, None]
    lower = np.linalg.cholesky(cov + reg * np.eye(d))
    chol = np.linalg.inv(lower).transpose(0, 2, 1)  # (z - mu) @ chol[k] is white
    log_det = -np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)
    return counts / n, means, chol, log_det


_SCORERS = {"lof": KnnScorer, "knn": KnnScorer, "gmm": GmmScorer}


@dataclass(frozen=True)
class Baseline:
    """A fitted reference of normal embeddings with its percentile calibration.

    Attributes
    ----------
    scorer : the reference model (:class:`KnnScorer` or :class:`GmmScorer`) fitted on all reference windows.
    calibration : (M,) sorted held-out raw scores of the reference windows.
    examples : (<= :data:`MAX_EXAMPLES`, D) float16, evenly spaced reference windows: a sample of this device's
        ordinary sound (enrolled classes set their acceptance threshold on it).
    meta : JSON-able facts (windows, seconds, source, model sha256, embedding size, fitted at).
    """

    scorer: KnnScorer | GmmScorer
    calibration: np.ndarray
    examples: np.ndarray
    meta: dict

    @property
    def method(self) -> str:
        return self.scorer.method

    @property
    def embedding_size(self) -> int:
        return int(self.scorer.mean.shape[0])

    def raw_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Uncalibrated scores [shape=(n,)] of embeddings [shape=(n, D)] (or one (D,) embedding)."""
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if x.shape[1] != self.embedding_size:
            raise ModelError(f"embeddings have {x.shape[1]} dimensions but the baseline was fitted on "
                             f"{self.embedding_size}; run `audeep-edge baseline fit` for this bundle")
        return self.scorer.raw(x)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Novelty in [0, 1] [shape=(n,)]: the fraction of held-out reference scores below each raw score."""
        raw = self.raw_scores(embeddings)
        return np.searchsorted(self.calibration, raw, side="right") / self.calibration.size

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (an ``.npz``) atomically, so a running ``listen`` never reads half a file."""
        path = Path(path)
        arrays = {f"scorer_{name}": value for name, value in self.scorer.arrays().items()}
        meta = dict(self.meta, method=self.method, format_version=FORMAT_VERSION)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, calibration=self.calibration, examples=self.examples, meta=np.array(json.dumps(meta)),
                     **arrays)
        os.replace(tmp, path)
        return path


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline written by :meth:`Baseline.save`.

    Raises
    ------
    ModelError : missing, unreadable or incompatible file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist; run `audeep-edge baseline fit` first")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(str(arrays["meta"]))
        scorer_arrays = {name[len("scorer_"):]: value for name, value in arrays.items() if name.startswith("scorer_")}
        if meta.get("format_version") != FORMAT_VERSION or meta.get("method") not in _SCORERS:
            raise ValueError(f"format {meta.get('format_version')} / method {meta.get('method')!r}")
        scorer = _SCORERS[meta["method"]].from_arrays(scorer_arrays)
        return Baseline(scorer=scorer, calibration=np.asarray(arrays["calibration"], np.float64),
                        examples=arrays["examples"], meta=meta)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not a baseline this audeep-edge reads ({exc}); "
                         "run `audeep-edge baseline fit` again") from None


def bundle_baseline(bundle_dir: str | Path, model_sha256: str) -> Baseline | None:
    """The bundle's ``baseline.npz`` (None if there is none).

    Raises
    ------
    ModelError : unreadable, or fitted on another model's embeddings.
    """
    path = Path(bundle_dir) / BASELINE_FILE
    if not path.is_file():
        return None
    baseline = load_baseline(path)
    if baseline.meta.get("model_sha256") != model_sha256:
        raise ModelError(f"{path} was fitted with another model; run `audeep-edge baseline fit` again")
    return baseline


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
                 seed: int = 0, meta: dict | None = None) -> Baseline:
    """Fit a baseline on reference embeddings and calibrate it on held-out folds.

    Parameters
    ----------
    embeddings : (N, D) embeddings of normal audio, N >= :data:`MIN_WINDOWS`.
    method : ``lof`` (k-NN distance relative to the local density), ``knn`` (k-NN distance) or ``gmm``.
    groups : (N,) source of each window (file name), or None for one continuous recording in time order.
    folds : number of held-out folds for the calibration.
    k, metric : kNN neighbours and distance. components, dims : GMM components and PCA dimensions.
    meta : extra facts stored with the baseline.

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
    x = _check_embeddings(embeddings, "baseline")
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
    info = {"windows": int(x.shape[0]), "embedding_size": int(x.shape[1]), "folds": int(np.unique(fold).size)}
    examples = x[np.linspace(0, x.shape[0] - 1, min(x.shape[0], MAX_EXAMPLES)).round().astype(int)]
    return Baseline(scorer=fit(np.ones(x.shape[0], bool)), calibration=np.sort(held_out),
                    examples=examples.astype(np.float16), meta={**info, **(meta or {})})


@dataclass(frozen=True)
class NoveltyConfig:
    """When per-window novelty scores become a ``novel`` event.

    Parameters
    ----------
    threshold : an event starts once every score stays >= threshold for ``min_duration`` seconds.
    release : an active event ends at the first score below ``release`` (hysteresis; <= threshold).
    min_duration : seconds of audio time from the first to the current high window (0: the first one fires).
    """

    threshold: float = 0.95
    release: float = 0.8
    min_duration: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"--novelty-threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.release <= self.threshold:
            raise ConfigError(f"--novelty-release must be in [0, threshold {self.threshold}], got {self.release}")
        if self.min_duration < 0:
            raise ConfigError(f"--novelty-min-duration must be >= 0 seconds, got {self.min_duration}")


@dataclass(frozen=True)
class NoveltyEvent:
    """A ``novel`` event edge: ``state`` is ``start`` or ``end``; times are audio seconds.

    ``start_time`` is the first high window, ``duration`` runs from it to ``audio_time``, ``peak`` is the highest
    score so far.
    """

    state: str
    audio_time: float
    start_time: float
    duration: float
    peak: float

    def payload(self) -> dict:
        """Fields for the MQTT ``event`` message (``type: "novel"`` is added by the sink)."""
        return {"state": self.state, "audio_time": round(self.audio_time, 3), "start_time": round(self.start_time, 3),
                "duration": round(self.duration, 3), "peak": round(self.peak, 4)}


class NoveltyDetector:
    """Per-window novelty scores in, ``start``/``end`` events out (at most one event per window)."""

    def __init__(self, config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the current run of high scores (a source restarted)."""
        self.active = False
        self._since: float | None = None
        self._peak = 0.0

    def update(self, audio_time: float, score: float) -> NoveltyEvent | None:
        """Feed one window's score (NaN counts as low); return the event this window causes, if any."""
        cfg = self.config
        high = bool(score >= cfg.threshold)
        if self.active:
            if score >= cfg.release:
                self._peak = max(self._peak, float(score))
                return None
            event = NoveltyEvent("end", audio_time, self._since, audio_time - self._since, self._peak)
            self.reset()
            return event
        if not high:
            self._since, self._peak = None, 0.0
            return None
        if self._since is None:
            self._since = audio_time
        self._peak = max(self._peak, float(score))
        if audio_time - self._since >= cfg.min_duration:
            self.active = True
            return NoveltyEvent("start", audio_time, self._since, audio_time - self._since, self._peak)
        return None
