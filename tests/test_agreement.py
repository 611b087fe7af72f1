"""Agreement training of a t-RAE: augmented views, the NT-Xent loss, a resumable run that loads as any t-RAE's."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from audeep_edge.errors import ConfigError
from audeep_edge.training import runs
from audeep_edge.training.autoencoders import TimeAutoencoderConfig, build_autoencoder
from audeep_edge.training.autoencoders.agreement import AgreementAutoencoder, nt_xent
from audeep_edge.training.trainer import AgreementOptions, TrainingOptions, train_agreement, train_autoencoder
from audeep_edge.training.views import ViewSettings, view, view_pairs

T, F = 12, 16


def windows(n: int = 16, seed: int = 0) -> np.ndarray:
    """(N, T, F) windows in auDeep's scaling: a ridge at 1 (the peak) over a floor near -1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, -0.6, (n, T, F)).astype(np.float32)
    for i, band in enumerate(rng.integers(2, F - 2, n)):
        x[i, :, band] = 1.0
    return x


def test_a_view_stays_a_window_and_moves_the_sound():
    w = windows(2)
    first = view(w[0], w[1], np.random.default_rng(1))
    assert first.shape == (T, F) and first.dtype == np.float32
    assert first.min() >= -1.0 and first.max() <= 1.0 and first.max() > 0.9   # scaled to its own peak again
    assert np.array_equal(first, view(w[0], w[1], np.random.default_rng(1)))  # a seed gives one view
    assert not np.allclose(first, view(w[0], w[1], np.random.default_rng(2)))
    still = ViewSettings(mix_probability=0, warp=0, shift_bins=0, roll_frames=0, mask_frames=0, mask_bins=0)
    assert np.allclose(view(w[0], w[1], np.random.default_rng(3), still), w[0], atol=1e-6)  # no change: itself
    shifted = ViewSettings(mix_probability=0, warp=0, shift_bins=3, roll_frames=0, mask_frames=0, mask_bins=0)
    peaks = {int(np.argmax(view(w[0], w[1], np.random.default_rng(s), shifted).mean(0))) for s in range(8)}
    assert len(peaks) > 1                                                     # the ridge moves along the mel axis
    for wrong in ({"warp": 1.5}, {"roll_frames": -1}, {"mix_gain_db": (-6.0, -20.0)}):
        with pytest.raises(ConfigError):
            ViewSettings(**wrong)


def test_view_pairs_are_two_views_of_one_window():
    pairs = view_pairs(windows(), 5, np.random.default_rng(0))
    assert pairs.shape == (5, 2, T, F) and pairs.dtype == np.float32
    assert not np.allclose(pairs[:, 0], pairs[:, 1])


def test_nt_xent_is_low_when_the_two_views_agree():
    rng = np.random.default_rng(0)
    one = rng.normal(size=(8, 32)).astype(np.float32)
    agreeing = float(nt_xent(ops.convert_to_tensor(np.vstack([one, one])), 0.1))
    unrelated = float(nt_xent(ops.convert_to_tensor(rng.normal(size=(16, 32)).astype(np.float32)), 0.1))
    assert agreeing < 0.5 < np.log(15) - 1 < unrelated


def test_agreement_needs_a_forward_gru_t_rae():
    for config in (TimeAutoencoderConfig(num_units=8, bidirectional_encoder=True),
                   TimeAutoencoderConfig(num_units=8, cell="LSTM")):
        with pytest.raises(ConfigError, match="forward-only GRU"):
            AgreementAutoencoder(build_autoencoder(config, (T, F)))


def test_agreement_run_continues_a_t_rae_resumes_and_loads_as_one(tmp_path):
    start = tmp_path / "start"
    config = TimeAutoencoderConfig(num_units=8, bidirectional_decoder=True)
    train_autoencoder(windows(), config, start, TrainingOptions(batch_size=8, num_epochs=1, seed=0),
                      frontend={"mel_bands": F}, verbose=0)
    options = AgreementOptions(steps_per_epoch=2)
    run = tmp_path / "agree"
    report = train_agreement(windows(), start, run, TrainingOptions(batch_size=4, num_epochs=2, seed=0), options,
                             verbose=0)
    assert [e.epoch for e in report.epochs] == [1, 2] and all(np.isfinite(e.loss) for e in report.epochs)
    content = runs.read_run_config(run)
    assert content["frontend"] == {"mel_bands": F} and content["training"]["start"] == str(start)
    assert content["training"]["agreement"]["steps_per_epoch"] == 2
    before, after = (runs.load_encoder(r)(windows(3))["embedding"] for r in (start, run))
    assert np.asarray(after).shape == (3, 16) and not np.allclose(before, after)   # trained on from the start run
    with pytest.raises(ConfigError, match="--continue"):
        train_agreement(windows(), start, run, TrainingOptions(batch_size=4, num_epochs=2), options, verbose=0)
    report = train_agreement(windows(), start, run, TrainingOptions(batch_size=4, num_epochs=3, seed=0), options,
                             resume=True, verbose=0)
    assert [e.epoch for e in report.epochs] == [3]
    assert runs.read_run_config(run)["training"]["num_epochs"] == 3
