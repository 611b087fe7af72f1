"""Gaussian-mixture novelty scorer (``gmm``): negative log-likelihood in a whitened PCA space plus a residual term.

numpy only: the mixture is fitted by EM here, not by scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
