"""Partial whitening of an embedding part: the directions that dominate unlabelled audio are damped by the power
asked for, the others pass at one gain, the Keras layers the bundles hold compute the numpy reference, and the
file a bundle ships undoes it exactly."""

from __future__ import annotations

import numpy as np
import pytest

from audeep_edge.encoder.whitening import EmbeddingWhitening, PartialWhitening, WhiteningSettings, read_whitening
from audeep_edge.errors import ModelError
from audeep_edge.training.fused import whitening_layer

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
    model = keras.Model(inputs, whitening_layer(white, inputs, "part"))
    np.testing.assert_allclose(model.predict(corpus[:64], verbose=0), white.apply(corpus[:64]), atol=1e-4)


@pytest.mark.parametrize("power, rank", [(0.25, 3), (0.5, 20), (1.0, 8)])
def test_undo_gives_back_the_standardised_values(corpus, power, rank):
    white = PartialWhitening.fit(corpus, WhiteningSettings(power=power, rank=rank))
    np.testing.assert_allclose(white.undo(white.apply(corpus[:50])), corpus[:50], atol=1e-3)


def test_a_bundle_s_whitening_file_undoes_each_part_in_its_span(corpus, tmp_path):
    first = PartialWhitening.fit(corpus, WhiteningSettings(power=0.25, rank=4))
    second = PartialWhitening.fit(corpus[:, :8], WhiteningSettings(power=0.5, rank=2))
    z = np.hstack([corpus[:10], corpus[:10, :8]]).astype(np.float32)
    embedding = np.hstack([first.apply(z[:, :D]), second.apply(z[:, D:])])
    EmbeddingWhitening({"codebook": (slice(0, D), first), "t-rae": (slice(D, D + 8), second)}).save(tmp_path)
    np.testing.assert_allclose(read_whitening(tmp_path).undo(embedding), z, atol=0.02)  # float16 bases
    assert read_whitening(tmp_path / "elsewhere") is None  # an embedding that is not whitened
    np.savez(tmp_path / "whitening.npz", **{"codebook/span": np.array([0, D]), "codebook/mean": np.zeros(D),
                                            "codebook/basis": np.full((D, 2), np.nan), "codebook/gains": np.ones(2),
                                            "codebook/tail_gain": np.array(1.0)})
    with pytest.raises(ModelError, match="not finite"):  # would turn every novelty score into NaN
        read_whitening(tmp_path)
    np.savez(tmp_path / "whitening.npz")  # empty: nothing to undo is not "not whitened"
    with pytest.raises(ModelError, match="holds no parts"):
        read_whitening(tmp_path)
    (tmp_path / "whitening.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="whitening.npz is unreadable"):
        read_whitening(tmp_path)
