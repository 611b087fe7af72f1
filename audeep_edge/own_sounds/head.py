"""The classifier head ``train`` fits on embeddings: class-balanced softmax regression on standardised embeddings
(L2, C = 1: scikit-learn's ``LogisticRegression`` defaults), with the standardisation folded into the weights so
that the head is one FULLY_CONNECTED + SOFTMAX on the raw embedding. numpy and scipy only.

Few clips per class and a pretrained encoder: a linear model is what such data can support (the transfer
benchmark, ``benchmarks/transfer.py``, scores bundles with a linear model too: scikit-learn's, unweighted, on clip
means).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

#: inverse L2 strength on standardised features
REGULARISATION = 1.0
#: embedding dimensions that barely vary in the training windows are not blown up by standardisation
MIN_STD = 1e-3


@dataclass(frozen=True)
class LinearHead:
    """``probabilities = softmax(embedding · weightsᵀ + bias)``; weights (C, D), bias (C,) float32."""

    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, D) embeddings -> (n, C) class probabilities."""
        return softmax(np.atleast_2d(embeddings) @ self.weights.T + self.bias, axis=1)


def fit_head(x: np.ndarray, y: np.ndarray, num_classes: int, regularisation: float = REGULARISATION,
             columns: slice = slice(None)) -> LinearHead:
    """Fit on windows ``x`` (n, D) with class indices ``y`` (n,); classes weighted to equal total weight.

    ``columns``: the span of the embedding the head reads (one part of encoders side by side); the weights of
    the other dimensions are zero, so the head still takes the whole (D,) embedding.
    """
    width = np.shape(x)[1]
    x = np.asarray(x, np.float64)[:, columns]
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), MIN_STD)
    z = (x - mean) / std
    counts = np.bincount(y, minlength=num_classes)
    sample_weight = (len(y) / (num_classes * np.maximum(counts, 1)))[y]
    targets = np.eye(num_classes)[y]
    d = z.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:num_classes * d].reshape(num_classes, d), theta[num_classes * d:]
        log_p = log_softmax(z @ w.T + b, axis=1)
        residual = sample_weight[:, None] * (np.exp(log_p) - targets)
        value = -np.sum(sample_weight[:, None] * targets * log_p) + 0.5 / regularisation * np.sum(w * w)
        grad_w = residual.T @ z + w / regularisation
        return value, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])

    theta = minimize(loss, np.zeros(num_classes * (d + 1)), jac=True, method="L-BFGS-B",
                     options={"maxiter": 2000}).x
    w, b = theta[:num_classes * d].reshape(num_classes, d), theta[num_classes * d:]
    raw = w / std
    weights = np.zeros((num_classes, width), np.float32)
    weights[:, columns] = raw
    return LinearHead(weights=weights, bias=(b - raw @ mean).astype(np.float32))


def clip_probabilities(head: LinearHead, windows: np.ndarray) -> np.ndarray:
    """One clip's class probabilities [shape=(C,)]: the mean over its windows' [shape=(n, D)]."""
    return head.probabilities(windows).mean(axis=0)


@dataclass(frozen=True)
class CrossValidation:
    """Clip-level cross-validation: ``accuracy`` over all clips, ``fold_accuracies`` (K,), ``confusion`` (C, C)
    clip counts (rows: true class, columns: predicted)."""

    folds: int
    accuracy: float
    fold_accuracies: list[float]
    confusion: np.ndarray


def cross_validate(clips: list[np.ndarray], labels: np.ndarray, folds: np.ndarray, num_folds: int,
                   num_classes: int, columns: slice = slice(None)) -> CrossValidation:
    """Fit on the clips outside fold k, predict the clips in it, for every k.

    Parameters
    ----------
    clips : N arrays of window embeddings, (n_i, D) each.
    labels : (N,) class index per clip. folds : (N,) fold index 0..K-1 per clip.
    columns : the span of the embedding the heads read (:func:`fit_head`).
    """
    confusion = np.zeros((num_classes, num_classes), np.int64)
    fold_accuracies = []
    for k in range(num_folds):
        train = np.flatnonzero(folds != k)
        head = fit_head(np.concatenate([clips[i] for i in train]),
                        np.concatenate([np.full(len(clips[i]), labels[i]) for i in train]), num_classes,
                        columns=columns)
        held_out = np.flatnonzero(folds == k)
        predicted = [int(np.argmax(clip_probabilities(head, clips[i]))) for i in held_out]
        for i, p in zip(held_out, predicted):
            confusion[labels[i], p] += 1
        fold_accuracies.append(float(np.mean(np.asarray(predicted) == labels[held_out])))
    return CrossValidation(num_folds, float(np.trace(confusion) / confusion.sum()), fold_accuracies, confusion)


def head_inputs(parts: dict[str, slice]) -> dict[str, slice]:
    """What a head may read of an embedding of encoders side by side (``parts``: name -> span): all of it
    first, then each part alone; ``{"all": slice(None)}`` for one encoder."""
    return {"all": slice(None), **(parts if len(parts) > 1 else {})}


def choose_head_input(clips: list[np.ndarray], labels: np.ndarray, folds: np.ndarray, num_folds: int,
                      num_classes: int, parts: dict[str, slice]) -> tuple[str, dict[str, CrossValidation]]:
    """Cross-validate a head on each of :func:`head_inputs`; return the best one's name (all of it on a tie)
    and every cross-validation. Words, for example, are told apart by the order of their frames: a head on the
    t-RAE's part alone beats one that also reads the codebook's textures, which it overfits to the speakers."""
    scores = {name: cross_validate(clips, labels, folds, num_folds, num_classes, columns=columns)
              for name, columns in head_inputs(parts).items()}
    return max(scores, key=lambda name: scores[name].accuracy), scores
