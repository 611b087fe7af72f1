"""Partial whitening of an embedding part: the directions that dominate unlabelled audio are damped by the power
asked for, the others pass at one gain, and the Keras layers the bundles hold compute the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from audeep_edge.training.whitening import PartialWhitening, WhiteningSettings

D = 20


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    """(4000, D) standardised-looking features: one shared factor of variance 100 over all dims, plus noise."""
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(4000, 1)) * 10.0 * np.ones((1, D)) / np.sqrt(D)
    return shared + rng.normal(size=(4000, D))


def top_variance(x: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(np.cov(x, rowvar=False))[-1])


def test_full_whitening_makes_the_corpus_covariance_the_identity(corpus):
    white = PartialWhitening.fit(corpus, WhiteningSettings(power=1.0, floor=1e-6, rank=D))
    np.testing.assert_allclose(np.cov(white.apply(corpus), rowvar=False), np.eye(D), atol=1e-3)


def test_partial_whitening_damps_the_dominant_direction_by_its_power(corpus):
    assert top_variance(corpus) == pytest.approx(101, rel=0.1)
    half = PartialWhitening.fit(corpus, WhiteningSettings(power=0.5, floor=1e-6, rank=D)).apply(corpus)
    assert top_variance(half) == pytest.approx(np.sqrt(101), rel=0.1)  # λ -> λ^(1 - a)
    same = PartialWhitening.fit(corpus, WhiteningSettings(power=0.0, rank=D)).apply(corpus)
    np.testing.assert_allclose(same, corpus, atol=1e-4)


def test_directions_beyond_the_rank_pass_at_the_gain_of_a_direction_without_variance(corpus):
    white = PartialWhitening.fit(corpus, WhiteningSettings(power=0.5, floor=0.1, rank=1))
    assert white.basis.shape == (D, 1) and white.tail_gain == pytest.approx(0.1 ** -0.25)
    shared = white.basis[:, 0]
    across = np.zeros(D)
    across[:2] = (1.0, -1.0)  # no part along the shared factor
    out = white.apply(np.stack([white.mean + across, white.mean + shared]))
    np.testing.assert_allclose(out[0] - white.tail_gain * white.mean, white.tail_gain * across, atol=1e-2)
    np.testing.assert_allclose(out[1] - white.tail_gain * white.mean, white.gains[0] * shared, atol=1e-4)
    assert white.gains[0] < 0.4 < white.tail_gain  # (101 + 0.1)^-1/4 against 0.1^-1/4


def test_the_keras_layers_compute_the_numpy_reference(corpus):
    keras = pytest.importorskip("keras")
    white = PartialWhitening.fit(corpus, WhiteningSettings(power=0.5, rank=4))
    inputs = keras.Input((D,))
    model = keras.Model(inputs, white.layer(inputs, "part"))
    np.testing.assert_allclose(model.predict(corpus[:64], verbose=0), white.apply(corpus[:64]), atol=1e-4)
