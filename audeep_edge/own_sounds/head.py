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


def fit_head(x: np.ndarray, y: np.ndarray, num_classes: int, regularisation: float = REGULARISATION) -> LinearHead:
    """Fit on windows ``x`` (n, D) with class indices ``y`` (n,); classes weighted to equal total weight."""
    x = np.asarray(x, np.float64)
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
    return LinearHead(weights=raw.astype(np.float32), bias=(b - raw @ mean).astype(np.float32))


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
                   num_classes: int) -> CrossValidation:
    """Fit on the clips outside fold k, predict the clips in it, for every k.

    Parameters
    ----------
    clips : N arrays of window embeddings, (n_i, D) each.
    labels : (N,) class index per clip. folds : (N,) fold index 0..K-1 per clip.
    """
    confusion = np.zeros((num_classes, num_classes), np.int64)
    fold_accuracies = []
    for k in range(num_folds):
        train = np.flatnonzero(folds != k)
        head = fit_head(np.concatenate([clips[i] for i in train]),
                        np.concatenate([np.full(len(clips[i]), labels[i]) for i in train]), num_classes)
        held_out = np.flatnonzero(folds == k)
        predicted = [int(np.argmax(clip_probabilities(head, clips[i]))) for i in held_out]
        for i, p in zip(held_out, predicted):
            confusion[labels[i], p] += 1
        fold_accuracies.append(float(np.mean(np.asarray(predicted) == labels[held_out])))
    return CrossValidation(num_folds, float(np.trace(confusion) / confusion.sum()), fold_accuracies, confusion)
