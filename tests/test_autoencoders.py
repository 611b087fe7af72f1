"""auDeep's autoencoders on Keras 3: sizes, training, run directories, unrolled encoder, no decoder leak."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import tensorflow as tf

from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.training import runs
from audeep_edge.training.autoencoders import (FrequencyAutoencoderConfig, FrequencyTimeAutoencoderConfig,
                                               TimeAutoencoderConfig, build_autoencoder, encoder_model)
from audeep_edge.training.generate import generate_representations
from audeep_edge.training.trainer import TrainingOptions, train_autoencoder

T, F = 12, 16


def toy_spectrograms(n: int = 32, seed: int = 0) -> np.ndarray:
    """Learnable (N, T, F) patterns in [-1, 1]: a few drifting sinusoidal ridges."""
    rng = np.random.default_rng(seed)
    t, f = np.meshgrid(np.arange(T) / T, np.arange(F) / F, indexing="ij")
    k, m = rng.integers(1, 3, n), rng.integers(0, 2, n)
    return np.stack([0.8 * np.sin(2 * np.pi * (ki * f + mi * t)) for ki, mi in zip(k, m)]).astype(np.float32)


@pytest.mark.parametrize("config, size", [
    # docs/audeep.md#t-rae: L·U·(2 if LSTM)·(2 if bidirectional decoder); encoder direction does not matter
    (TimeAutoencoderConfig(num_layers=2, num_units=8, bidirectional_decoder=True), 32),
    (TimeAutoencoderConfig(num_layers=2, num_units=8, bidirectional_encoder=True), 16),
    (TimeAutoencoderConfig(num_layers=1, num_units=8, cell="LSTM", bidirectional_encoder=True,
                           bidirectional_decoder=True, feed_previous_prob=0.5, encoder_noise=0.2), 32),
    (FrequencyAutoencoderConfig(num_units=8, cell="LSTM", freq_window_width=8, freq_window_overlap=4,
                                bidirectional_decoder=True), 32),
    (FrequencyTimeAutoencoderConfig(num_f_units=8, num_t_units=8, freq_window_width=8, freq_window_overlap=4,
                                    bidirectional_f_encoder=True, bidirectional_t_decoder=True), 32),
])
def test_shapes_and_representation_sizes(config, size):
    x = toy_spectrograms(3)
    model = build_autoencoder(config, (T, F))
    assert config.representation_size() == size
    assert tuple(model(x, training=True).shape) == (3, T, F)          # dropout, noise and feedback active
    embedding = encoder_model(model)(x)["embedding"]
    per_frame = config.model_type == "f-rae"
    assert tuple(embedding.shape) == ((3, T, size) if per_frame else (3, size))
    assert np.all(np.abs(np.asarray(embedding)) <= 1.0)               # tanh representation


def test_sample_recipe_representation_is_1024():
    recipe = TimeAutoencoderConfig(num_layers=2, num_units=256, cell="GRU", bidirectional_decoder=True)
    assert recipe.representation_size() == 1024
    encoder = encoder_model(build_autoencoder(recipe, (4, 128)))
    assert tuple(encoder.outputs[0].shape) == (None, 1024)
    assert TimeAutoencoderConfig(num_layers=2, num_units=256).representation_size() == 512


@pytest.mark.parametrize("cell, gates, candidate", [("GRU", 2, 1), ("LSTM", 4, 0)])
def test_initialisation_is_tf1s(cell, gates, candidate):
    """auDeep trained with TF1's defaults (docs/audeep.md#recurrent-layers): Glorot-uniform over each cell's
    joint [x, h] kernel (in Keras' input and recurrent parts alike), GRU gate biases 1, Glorot-uniform Dense biases."""
    units = 32
    model = build_autoencoder(TimeAutoencoderConfig(num_layers=2, num_units=units, cell=cell,
                                                    bidirectional_decoder=True), (T, F))
    blocks = [(0, gates * units)] + ([(gates * units, (gates + candidate) * units)] if candidate else [])
    for rnn, width in zip(model.encoder.rnns, (F, units)):           # the two encoder layers: D = F, then U
        for kernel in (rnn.cell.kernel, rnn.cell.recurrent_kernel):
            kernel = np.asarray(kernel)
            for start, stop in blocks:
                limit = np.sqrt(6.0 / (width + units + stop - start))
                assert 0.9 * limit < np.abs(kernel[:, start:stop]).max() <= limit
        if cell == "GRU":
            bias = np.asarray(rnn.cell.bias)
            assert np.all(bias[:2 * units] == 1) and np.all(bias[2 * units:] == 0)
    bias = np.asarray(model.representation.bias)
    assert 0.5 * np.sqrt(3 / bias.size) < np.abs(bias).max() <= np.sqrt(3 / bias.size)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_decoder_output_at_t_does_not_depend_on_target_t(bidirectional):
    """The forward stack reads target t-1 at step t (a single shift); a backward stack reads zeros."""
    config = TimeAutoencoderConfig(num_units=8, bidirectional_decoder=bidirectional)
    model = build_autoencoder(config, (T, F))
    rng = np.random.default_rng(1)
    z = np.tanh(rng.standard_normal((2, config.representation_size()))).astype(np.float32)
    targets = toy_spectrograms(2)
    t = 5
    perturbed = targets.copy()
    perturbed[:, t] = -perturbed[:, t]
    change = np.abs(np.asarray(model.decode(z, perturbed)) - np.asarray(model.decode(z, targets))).max(axis=(0, 2))
    assert np.all(change[:t + 1] == 0.0)
    assert change[t + 1] > 1e-4


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A t-RAE (bidirectional decoder) trained 3 epochs on the toy spectrograms, through the core API."""
    run_dir = tmp_path_factory.mktemp("runs") / "toy"
    config = TimeAutoencoderConfig(num_units=8, bidirectional_decoder=True, keep_prob=1.0)
    options = TrainingOptions(batch_size=8, num_epochs=3, learning_rate=0.02, seed=0)
    frontend = {"window_width": 0.08, "window_overlap": 0.04, "mel_bands": F}
    report = train_autoencoder(toy_spectrograms(), config, run_dir, options, frontend=frontend, inputs=["toy.nc"],
                               verbose=0)
    return run_dir, report


def test_training_lowers_the_rmse_and_fills_the_run_directory(toy_run):
    run_dir, report = toy_run
    losses = [e.loss for e in report.epochs]
    assert len(losses) == 3 and losses[-1] < 0.9 * losses[0]
    assert all(e.examples_per_s > 0 for e in report.epochs)
    content = json.loads((run_dir / "config.json").read_text())
    assert content["model_type"] == "t-rae" and content["input_shape"] == [T, F]
    assert content["representation_size"] == 16 and content["architecture"]["bidirectional_decoder"]
    assert content["frontend"]["mel_bands"] == F and content["training"]["inputs"] == ["toy.nc"]
    assert [e for e, _ in runs.list_checkpoints(run_dir)] == [1, 2, 3]
    assert (run_dir / "autoencoder.weights.h5").is_file()
    events = [(v.tag, e.step) for path in (run_dir / "logs").glob("events.out.tfevents.*")
              for e in tf.compat.v1.train.summary_iterator(str(path)) for v in e.summary.value]
    assert [step for tag, step in events if tag == "epoch_loss"] == [1, 2, 3]    # TensorBoard scalars
    with open(run_dir / "logs" / "history.csv") as fh:
        assert [float(row["loss"]) for row in csv.DictReader(fh)] == pytest.approx(losses)


def test_unrolled_encoder_equals_the_loop_encoder(toy_run):
    run_dir, _ = toy_run
    x = toy_spectrograms(5, seed=3)
    loop = runs.load_encoder(run_dir, unroll=False)
    unrolled = runs.load_encoder(run_dir, unroll=True)
    assert loop.input.name == "spectrogram" and list(loop.output) == ["embedding"]
    a, b = (np.asarray(m(x)["embedding"]) for m in (loop, unrolled))
    assert a.shape == (5, 16) and np.abs(a - b).max() < 1e-5
    assert np.allclose(generate_representations(run_dir, x, batch_size=2), a, atol=1e-6)


def test_an_existing_run_is_not_overwritten_and_continues_from_its_last_checkpoint(toy_run, tmp_path):
    run_dir, _ = toy_run
    other = TimeAutoencoderConfig(num_units=4)
    with pytest.raises(ConfigError, match="--continue"):
        train_autoencoder(toy_spectrograms(), other, run_dir, TrainingOptions(num_epochs=1), verbose=0)
    with pytest.raises(ModelError, match="not a training run"):
        train_autoencoder(toy_spectrograms(), other, tmp_path / "none", TrainingOptions(), resume=True)
    # continuing uses the run's own architecture (units 8), not ``other``
    report = train_autoencoder(toy_spectrograms(), other, run_dir,
                               TrainingOptions(batch_size=8, num_epochs=4, learning_rate=0.02, checkpoints_to_keep=2),
                               resume=True, verbose=0)
    assert [e.epoch for e in report.epochs] == [4]
    assert report.epochs[0].loss < 1.1 * toy_run[1].epochs[-1].loss
    assert [e for e, _ in runs.list_checkpoints(run_dir)] == [3, 4]
    assert runs.read_run_config(run_dir)["training"]["num_epochs"] == 4  # the run's record says how long it trained
    with h5py.File(runs.checkpoint_path(run_dir, 4)) as h5:      # Adam's step counter went on from epoch 3
        assert int(np.asarray(h5["optimizer/vars/0"])) == 4 * 4  # 4 epochs x ceil(32 / 8) steps
    assert runs.load_encoder(run_dir).outputs[0].shape[-1] == 16


def test_invalid_options_name_the_option():
    with pytest.raises(ConfigError, match="--keep-prob"):
        TimeAutoencoderConfig(keep_prob=0.0)
    with pytest.raises(ConfigError, match="--freq-window-width"):
        build_autoencoder(FrequencyAutoencoderConfig(freq_window_width=32), (T, F))
    with pytest.raises(ConfigError, match="--cell"):
        FrequencyTimeAutoencoderConfig(cell="RNN")
