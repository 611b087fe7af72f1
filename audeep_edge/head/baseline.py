"""A device's novelty baseline: a fitted reference of its "normal" sound, scoring windows as percentiles in [0, 1].

A *baseline* is fitted on device from embeddings of ordinary audio (minutes of the room, or files;
:mod:`audeep_edge.head.baseline_fit`). A window's raw score says how far it lies from that reference
(:mod:`audeep_edge.head.knn_scorer`, :mod:`audeep_edge.head.gmm_scorer`); raw scores are calibrated into
percentiles of *held-out* reference scores, so ordinary windows score ~uniformly in [0, 1] and anything stranger
than all of the reference scores 1. This module holds the fitted baseline and its file (``baseline.npz``).
numpy only: the device never imports scikit-learn or TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.encoder.whitening import WHITENING_FILE, EmbeddingWhitening, read_whitening
from audeep_edge.errors import ModelError
from audeep_edge.head.gmm_scorer import GmmScorer
from audeep_edge.head.knn_scorer import KnnScorer

BASELINE_FILE = "baseline.npz"
FORMAT_VERSION = 1
_SCORERS = {"lof": KnnScorer, "knn": KnnScorer, "gmm": GmmScorer}


@dataclass(frozen=True)
class Baseline:
    """A fitted reference of normal embeddings with its percentile calibration.

    Attributes
    ----------
    scorer : the reference model (:class:`KnnScorer` or :class:`GmmScorer`) fitted on all reference windows.
    calibration : (M,) sorted held-out raw scores of the reference windows.
    examples : (<= :data:`~audeep_edge.head.baseline_fit.MAX_EXAMPLES`, D) float16, evenly spaced reference
        windows: a sample of this device's ordinary sound (enrolled classes set their acceptance threshold on it).
    meta : JSON-able facts (windows, seconds, source, model sha256, embedding size, fitted at; ``unwhitened``: the
        scorer reads the embeddings with the bundle's whitening undone).
    space : that undoing (the bundle's ``whitening.npz``), or None: the scorer reads the embeddings as they are.
        Examples stay as the bundle gives them (the enrolled classes compare those).
    """

    scorer: KnnScorer | GmmScorer
    calibration: np.ndarray
    examples: np.ndarray
    meta: dict
    space: EmbeddingWhitening | None = None

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
        return self.scorer.raw(self.space.undo(x) if self.space is not None else x)

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
    if not baseline.meta.get("unwhitened"):
        return baseline
    space = read_whitening(bundle_dir)
    if space is None:
        raise ModelError(f"{path} scores un-whitened embeddings but the bundle has no {WHITENING_FILE}; "
                         "run `audeep-edge baseline fit` again")
    return dataclasses.replace(baseline, space=space)
