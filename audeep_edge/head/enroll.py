"""Enrolled classes: new labels learnt on the device from a few seconds of audio, without retraining.

Each enrolled class is the centroid of its examples' embeddings scaled to unit length; a window's similarity to a
class is the cosine to its centroid (nearest centroid: as accurate as a logistic regression on so few examples,
and enrolling is an average). A window *belongs* to an enrolled class with probability
``sigmoid((similarity - accept) / SHARPNESS)``. The class's ``accept`` is the similarity that only
:data:`FALSE_ACCEPT` of this device's ordinary windows reach (the baseline's sample of normal sound), or without a
baseline the bundle's ``accept_similarity`` (:func:`calibrated_accept`, measured when it was built) or else
:data:`ACCEPT_SIMILARITY`. :meth:`EnrolledHead.combine` splits the best membership ``m`` among
the enrolled classes (softmax over similarities) and leaves ``1 - m`` to the bundle's trained head, so ``listen``
reports one distribution over trained + enrolled labels. Without a trained head the ``1 - m`` is "none of these"
and the probabilities sum to ``m``.

The examples themselves are stored next to the bundle (``enrolled.npz``, the only file read back; ``enrolled.json``
is a readable copy of its index), so the centroids and thresholds are rebuilt in milliseconds whenever a class is
added or removed or the baseline changes. numpy only. Measurements: docs/adaptation.md.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from audeep_edge.errors import ConfigError, DataError, ModelError

ENROLLED_FILE = "enrolled.npz"
ENROLLED_INDEX = "enrolled.json"
FORMAT_VERSION = 1
#: share of the baseline's ordinary windows an enrolled class may accept (sets its threshold)
FALSE_ACCEPT = 0.05
#: cosine similarity at which a window is as likely enrolled as not, when there is no baseline to calibrate on and
#: the bundle records none (measured for the ESC-10 t-RAE: ~5 % of other classes' clips reach it; docs/adaptation.md)
ACCEPT_SIMILARITY = 0.7
#: width of the sigmoid around ``accept``, in cosine units, when there is no baseline
SHARPNESS = 0.05
#: softmax temperature over the enrolled classes' similarities
TEMPERATURE = 0.05
MAX_NAME_LENGTH = 64
#: windows quieter than the loudest by more than this (dB) are pauses, not the sound being enrolled
ACTIVE_RANGE_DB = 20.0


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _centroid(x: np.ndarray) -> np.ndarray:
    """An enrolled class's centroid [shape=(D,)]: the unit-length mean of its unit-length examples [shape=(n, D)]."""
    return _unit_rows(_unit_rows(x).mean(axis=0))


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class EnrolledHead:
    """Nearest-centroid classifier over the enrolled classes.

    Attributes
    ----------
    names : C class names. centroids : (C, D) unit vectors.
    accept : (C,) cosine similarity at which each class's membership is 0.5.
    sharpness : (C,) width of each class's membership sigmoid, in cosine units.
    """

    names: tuple[str, ...]
    centroids: np.ndarray
    accept: np.ndarray
    sharpness: np.ndarray

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine similarities [shape=(n, C)] of embeddings [shape=(n, D) or (D,)] to each centroid."""
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if x.shape[1] != self.centroids.shape[1]:
            raise ModelError(f"embeddings have {x.shape[1]} dimensions but the enrolled classes "
                             f"{self.centroids.shape[1]}; enroll them again for this bundle")
        return _unit_rows(x) @ self.centroids.T

    def membership(self, similarities: np.ndarray) -> np.ndarray:
        """Probability [shape=(n,)] that each window is one of the enrolled sounds (its best class's)."""
        return (1.0 / (1.0 + np.exp(-(similarities - self.accept) / self.sharpness))).max(axis=1)

    def combine(self, embeddings: np.ndarray, base_probabilities: np.ndarray | None = None) -> np.ndarray:
        """Probabilities over the trained labels followed by the enrolled ones [shape=(n, B + C)].

        Parameters
        ----------
        embeddings : (n, D) or (D,) window embeddings.
        base_probabilities : (n, B) or (B,) probabilities of the bundle's trained head, or None without one.
        """
        sims = self.similarities(embeddings)
        m = self.membership(sims)[:, None]
        enrolled = m * _softmax(sims / TEMPERATURE)
        if base_probabilities is None:
            return enrolled
        base = np.atleast_2d(np.asarray(base_probabilities, dtype=np.float64))
        return np.concatenate([(1.0 - m) * base, enrolled], axis=1)


def calibrated_accept(embeddings: np.ndarray, labels: np.ndarray, k: int = 5, draws: int = 10,
                      seed: int = 0) -> float:
    """The cosine to a centroid of ``k`` clips of one class that :data:`FALSE_ACCEPT` of the other classes' clips
    reach, over labelled embeddings [shape=(n, D)] and their labels [shape=(n,)] (``draws`` centroids per class):
    the no-baseline threshold a bundle records for its encoder, measured as :data:`ACCEPT_SIMILARITY` was."""
    x, labels = _unit_rows(np.asarray(embeddings, dtype=np.float64)), np.asarray(labels)
    rng, similarities = np.random.default_rng(seed), []
    for label in np.unique(labels):
        own = np.flatnonzero(labels == label)
        for _ in range(draws):
            centroid = _centroid(x[rng.choice(own, min(k, len(own)), replace=False)])
            similarities.append(x[labels != label] @ centroid)
    return float(np.quantile(np.concatenate(similarities), 1.0 - FALSE_ACCEPT))


def active_windows(levels_dbfs: np.ndarray, range_db: float = ACTIVE_RANGE_DB) -> np.ndarray:
    """Mask [shape=(n,)] of the windows within ``range_db`` of the loudest (the pauses between two rings of
    a doorbell would otherwise teach it silence)."""
    levels = np.asarray(levels_dbfs, dtype=np.float64)
    return levels >= levels.max() - range_db if levels.size else np.zeros(0, bool)


def same_label(name: str, labels: Sequence[str]) -> str | None:
    """The label of ``labels`` that ``name`` spells, whatever the case ("rain" is "Rain"), or None."""
    return next((label for label in labels if label.casefold() == name.casefold()), None)


def check_name(name: str, trained_labels: Sequence[str], enrolled_labels: Sequence[str] = ()) -> str:
    """The class name to enroll ``name`` as, or ConfigError saying what is wrong with it.

    Labels match whatever their case, so one class never shows under two spellings: a trained label is refused,
    an enrolled one is returned as it is already spelled (its examples are then replaced or appended to).
    """
    clean = " ".join(str(name).split())
    if not clean:
        raise ConfigError("--label must not be empty")
    if len(clean) > MAX_NAME_LENGTH or not clean.isprintable():
        raise ConfigError(f"--label {name!r} must be printable and at most {MAX_NAME_LENGTH} characters")
    trained = same_label(clean, trained_labels)
    if trained is not None:
        spelled = "" if trained == clean else f" ({trained!r}: labels match whatever their case)"
        raise ConfigError(f"--label {clean!r} is one of the bundle's trained labels{spelled}; choose another name")
    return same_label(clean, enrolled_labels) or clean


class Enrollment:
    """The enrolled examples of one bundle, read from and written to ``bundle_dir/enrolled.npz``.

    Parameters
    ----------
    bundle_dir : the bundle directory.
    model_sha256 : the bundle model's hash (examples from another model are meaningless).
    embedding_size : D.
    accept_similarity : the bundle's no-baseline threshold (``Bundle.accept_similarity``); None:
        :data:`ACCEPT_SIMILARITY`.
    """

    def __init__(self, bundle_dir: str | Path, model_sha256: str, embedding_size: int,
                 accept_similarity: float | None = None) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.model_sha256 = model_sha256
        self.embedding_size = int(embedding_size)
        self.accept_similarity = ACCEPT_SIMILARITY if accept_similarity is None else float(accept_similarity)
        self._examples: dict[str, np.ndarray] = {}
        self._info: dict[str, dict] = {}

    @property
    def path(self) -> Path:
        return self.bundle_dir / ENROLLED_FILE

    @property
    def names(self) -> list[str]:
        """Enrolled class names in enrolment order (the order of their probabilities)."""
        return list(self._examples)

    def info(self, name: str) -> dict:
        """``windows``, ``source`` and ``enrolled_at`` (Unix seconds) of one class."""
        return dict(self._info[name], windows=int(self._examples[name].shape[0]))

    def add(self, name: str, embeddings: np.ndarray, *, source: str = "", append: bool = False) -> None:
        """Enroll ``name`` from embeddings [shape=(n, D)]; replace its examples unless ``append``."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(f"no embeddings to enroll {name!r} from; record longer or pass a longer file")
        if x.shape[1] != self.embedding_size:
            raise ModelError(f"embeddings have {x.shape[1]} dimensions, the bundle {self.embedding_size}")
        if not np.all(np.isfinite(x)):
            raise DataError(f"the embeddings of {name!r} contain NaN or infinity; check the audio and the model")
        if append and name in self._examples:
            x = np.concatenate([self._examples[name], x])
        self._examples[name] = x
        self._info[name] = {"source": source, "enrolled_at": round(time.time(), 3)}

    def remove(self, name: str) -> str:
        """Forget ``name`` (whatever its case) and return it as it was spelled; ConfigError listing the enrolled
        names when it is not one of them."""
        enrolled = same_label(" ".join(str(name).split()), self.names)
        if enrolled is None:
            known = ", ".join(self.names) or "none"
            raise ConfigError(f"--remove {name!r}: no such enrolled label (enrolled: {known})")
        del self._examples[enrolled], self._info[enrolled]
        return enrolled

    def head(self, negatives: np.ndarray | None = None) -> EnrolledHead | None:
        """The classifier for the current classes (None when nothing is enrolled).

        Parameters
        ----------
        negatives : (M, D) embeddings of this device's ordinary sound (the baseline's sample); each class accepts
            at most :data:`FALSE_ACCEPT` of them. None: every class accepts from ``accept_similarity``.
        """
        if not self._examples:
            return None
        centroids = np.stack([_centroid(x) for x in self._examples.values()])
        if negatives is None or len(negatives) == 0:
            accept = np.full(len(centroids), self.accept_similarity)
            sharpness = np.full(len(centroids), SHARPNESS)
        else:
            sims = _unit_rows(np.asarray(negatives, np.float32)) @ centroids.T
            accept = np.quantile(sims, 1.0 - FALSE_ACCEPT, axis=0)
            # membership 0.5 at the (1 - FALSE_ACCEPT) quantile of ordinary windows, 0.05 at their 3rd quartile
            sharpness = np.maximum((accept - np.quantile(sims, 0.75, axis=0)) / np.log(19.0), 1e-3)
        return EnrolledHead(names=tuple(self.names), centroids=centroids.astype(np.float32), accept=accept,
                            sharpness=sharpness)

    def save(self) -> Path:
        """Write ``enrolled.npz`` atomically (a running ``listen`` reloads it) and its readable index."""
        index = self._index()
        names = self.names
        embeddings = (np.concatenate([self._examples[n] for n in names]) if names
                      else np.zeros((0, self.embedding_size), np.float32))
        class_index = np.concatenate([np.full(self._examples[n].shape[0], i) for i, n in enumerate(names)]) \
            if names else np.zeros(0, int)
        tmp = self.path.with_name(f".{ENROLLED_FILE}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, embeddings=embeddings, class_index=class_index, meta=np.array(json.dumps(index)))
        os.replace(tmp, self.path)
        readable = self.bundle_dir / ENROLLED_INDEX
        tmp = readable.with_name(f".{ENROLLED_INDEX}.tmp")
        tmp.write_text(json.dumps(index, indent=2) + "\n")
        os.replace(tmp, readable)
        return self.path

    def _index(self) -> dict:
        return {"format_version": FORMAT_VERSION, "model_sha256": self.model_sha256,
                "embedding_size": self.embedding_size,
                "classes": [{"name": n, **self.info(n)} for n in self.names]}

    @classmethod
    def load(cls, bundle_dir: str | Path, model_sha256: str, embedding_size: int,
             accept_similarity: float | None = None) -> "Enrollment":
        """The bundle's enrolled classes (none when ``enrolled.npz`` does not exist).

        Raises
        ------
        ModelError : unreadable file, or examples made with another model (enroll again).
        """
        enrollment = cls(bundle_dir, model_sha256, embedding_size, accept_similarity)
        path = enrollment.path
        if not path.is_file():
            return enrollment
        try:
            with np.load(path, allow_pickle=False) as data:
                embeddings, class_index = data["embeddings"], data["class_index"]
                index = json.loads(str(data["meta"]))
            classes = index["classes"]
            if index.get("format_version") != FORMAT_VERSION or len(class_index) != len(embeddings):
                raise ValueError(f"format {index.get('format_version')}")
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path} is unreadable ({exc}); delete it and enroll again") from None
        if index.get("model_sha256") != model_sha256 or embeddings.shape[1:] != (enrollment.embedding_size,):
            raise ModelError(f"{path} was enrolled with another model; delete it (or `audeep-edge enroll --remove`) "
                             "and enroll again")
        for i, entry in enumerate(classes):
            enrollment._examples[entry["name"]] = embeddings[class_index == i].astype(np.float32)
            enrollment._info[entry["name"]] = {"source": entry.get("source", ""),
                                               "enrolled_at": entry.get("enrolled_at", 0.0)}
        return enrollment
