"""Evaluation of a learner: cross-validation or partitions, repeats, majority vote and scores
(docs/audeep.md#learners-and-evaluation).

Works on NumPy arrays: features ``(N, D)``, class indices ``(N,)``, filenames ``(N,)`` and boolean masks
that select the training and evaluation instances of each split. Differences from auDeep (documented in
docs/evaluation.md): without majority voting every instance (chunk) is scored on its own instead of "the last
chunk of a file wins"; UAR averages the recall over the classes present in the evaluated truth only; upsampling
balances the training classes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from audeep_edge.dataset.model import PARTITIONS, TRAIN, VALID
from audeep_edge.errors import DataError
from audeep_edge.training.learners import Learner


@dataclass(frozen=True)
class Split:
    """One train/evaluate split: ``train`` and ``evaluate`` are boolean masks ``(N,)``."""

    name: str
    train: np.ndarray
    evaluate: np.ndarray


def cross_validation_splits(cv_folds: np.ndarray) -> list[Split]:
    """Fold k trains on the instances with split TRAIN (0) and evaluates those with VALID (1) in column k.

    ``cv_folds`` : (N, K) int.
    """
    cv_folds = np.asarray(cv_folds)
    return [Split(f"fold {k + 1}", cv_folds[:, k] == TRAIN, cv_folds[:, k] == VALID)
            for k in range(cv_folds.shape[1])]


def partition_split(partitions: Sequence[int | None], train: Iterable[int], evaluate: Iterable[int]) -> Split:
    """Train on the union of the ``train`` partition codes, evaluate on the union of ``evaluate``.

    ``partitions`` : (N,) codes 0 TRAIN / 1 DEVEL / 2 TEST, None = missing.
    """
    train, evaluate = sorted(set(train)), sorted(set(evaluate))
    codes = np.array([-1 if p is None else int(p) for p in partitions])
    label = f"{'+'.join(PARTITIONS[c] for c in train)} -> {'+'.join(PARTITIONS[c] for c in evaluate)}"
    return Split(label, np.isin(codes, train), np.isin(codes, evaluate))


def balanced_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices that repeat every class up to the size of the largest one (exactly balanced).

    Each instance of a class with ``n`` members appears ``max // n`` times, and ``max % n`` randomly chosen
    ones once more. Returns a sorted int64 array into ``labels`` ``(N,)``.
    """
    classes, counts = np.unique(labels, return_counts=True)
    most = counts.max()
    index = []
    for cls, count in zip(classes, counts):
        members = np.flatnonzero(labels == cls)
        index += [np.tile(members, most // count), rng.choice(members, most % count, replace=False)]
    return np.sort(np.concatenate(index)).astype(np.int64)


def vote_per_file(filenames: np.ndarray, predictions: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One label per file: the most frequent chunk prediction (ties -> lowest class index).

    Returns ``(files, labels)`` sorted by filename.
    """
    files, inverse = np.unique(np.asarray(filenames, dtype=str), return_inverse=True)
    votes = np.zeros((files.size, num_classes), np.int64)
    np.add.at(votes, (inverse, np.asarray(predictions)), 1)
    return files, votes.argmax(axis=1)


def file_labels(filenames: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label of each file (that of its first instance), sorted by filename."""
    files, first = np.unique(np.asarray(filenames, dtype=str), return_index=True)
    return files, np.asarray(labels)[first]


def confusion_matrix(truth: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(truth), np.asarray(predictions)), 1)
    return matrix


def unweighted_average_recall(truth: np.ndarray, predictions: np.ndarray) -> float:
    """UAR: recall averaged over the classes that occur in ``truth`` (each class weighs the same).

    Unlike ``recall_score(average="macro")``, a class that is only predicted (absent from the truth) does
    not add a recall of 0.
    """
    truth, predictions = np.asarray(truth), np.asarray(predictions)
    return float(np.mean([np.mean(predictions[truth == cls] == cls) for cls in np.unique(truth)]))


@dataclass(frozen=True)
class Score:
    """Scores of one split in one repeat; ``confusion`` is (C, C) in class-index order."""

    repeat: int
    split: str
    accuracy: float
    uar: float
    confusion: np.ndarray

    @classmethod
    def of(cls, repeat: int, split: str, truth: np.ndarray, predictions: np.ndarray, num_classes: int) -> "Score":
        return cls(repeat, split, float(np.mean(truth == predictions)), unweighted_average_recall(truth, predictions),
                   confusion_matrix(truth, predictions, num_classes))


@dataclass(frozen=True)
class Evaluation:
    """All scores of an evaluation; means and population standard deviations over every (repeat, split)."""

    scores: list[Score]
    seed: int

    @property
    def accuracy(self) -> float:
        return float(np.mean([s.accuracy for s in self.scores]))

    @property
    def accuracy_std(self) -> float:
        return float(np.std([s.accuracy for s in self.scores]))

    @property
    def uar(self) -> float:
        return float(np.mean([s.uar for s in self.scores]))

    @property
    def uar_std(self) -> float:
        return float(np.std([s.uar for s in self.scores]))

    @property
    def confusion(self) -> np.ndarray:
        """(C, C) confusion counts summed over splits and repeats."""
        return np.sum([s.confusion for s in self.scores], axis=0)

    def to_dict(self, class_names: Sequence[str]) -> dict:
        """JSON-ready numbers; the confusion matrices keep the class order of ``class_names``."""
        return {
            "seed": self.seed,
            "labels": list(class_names),
            "accuracy": {"mean": self.accuracy, "std": self.accuracy_std},
            "uar": {"mean": self.uar, "std": self.uar_std},
            "confusion": self.confusion.tolist(),
            "splits": [{"repeat": s.repeat, "split": s.split, "accuracy": s.accuracy, "uar": s.uar,
                        "confusion": s.confusion.tolist()} for s in self.scores],
        }


def training_set(features: np.ndarray, labels: np.ndarray, upsample: bool,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The training data as given, or with ``upsample`` exactly class-balanced by repetition."""
    if not upsample:
        return features, labels
    index = balanced_indices(labels, rng)
    return features[index], labels[index]


def fit_predict(learner: Learner, train_features: np.ndarray, train_labels: np.ndarray, eval_features: np.ndarray,
                num_classes: int, *, upsample: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
    """Fit ``learner`` from scratch on the training data and predict class indices of ``eval_features``.

    ``rng`` draws the upsampling remainder and the learner's seed.
    """
    rng = rng or np.random.default_rng()
    train_features, train_labels = training_set(train_features, train_labels, upsample, rng)
    learner.fit(train_features, train_labels, num_classes, seed=int(rng.integers(2**31)))
    return learner.predict(eval_features)


def evaluate(learner: Learner, features: np.ndarray, labels: np.ndarray,
             filenames: np.ndarray, splits: Sequence[Split], num_classes: int, *, repeat: int = 1,
             majority_vote: bool = False, upsample: bool = False, seed: int = 0,
             on_score: Callable[[Score], None] | None = None) -> Evaluation:
    """Train ``learner`` from scratch (new weights, new scaler) per split and repeat and score its predictions.

    Parameters
    ----------
    learner : re-fitted for every split with a seed drawn from ``seed``
    features : (N, D) ; labels : (N,) class indices ; filenames : (N,) file of each instance (chunk)
    majority_vote : score one vote per file instead of every instance
    on_score : called after each split (progress reporting)
    """
    labels = np.asarray(labels, dtype=np.int64)
    filenames = np.asarray(filenames)
    rng = np.random.default_rng(seed)
    for split in splits:
        if not split.train.any() or not split.evaluate.any():
            raise DataError(f"{split.name}: the {'training' if not split.train.any() else 'evaluation'} set is empty")
    scores = []
    for r in range(repeat):
        for split in splits:
            predictions = fit_predict(learner, features[split.train], labels[split.train], features[split.evaluate],
                                      num_classes, upsample=upsample, rng=rng)
            truth = labels[split.evaluate]
            if majority_vote:
                names = filenames[split.evaluate]
                _, predictions = vote_per_file(names, predictions, num_classes)
                _, truth = file_labels(names, truth)
            scores.append(Score.of(r + 1, split.name, truth, predictions, num_classes))
            if on_score is not None:
                on_score(scores[-1])
    return Evaluation(scores, seed)
