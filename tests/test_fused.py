"""The fused encoder (codebook + t-RAE in one graph): each part computes what it computes alone from the device's
stacked input (the window's level beside auDeep's scaling of it), and the bundle built from it streams on LiteRT
close to Keras, in full int8 too.

A tiny real t-RAE run (1 x 8 GRU, windows of 20 frames x 16 mel bands) and a small random codebook keep the
conversion to seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_spectrograms, untrained_run
from stream_testing import cosine

from audeep_edge.bundle import load_bundle
from audeep_edge.encoder import Encoder
from audeep_edge.encoder.whitening import read_whitening
from audeep_edge.features import FLOOR_DB, FrontendConfig, encoder_input, input_bands
from audeep_edge.features.normalize import window_features
from audeep_edge.training.codebook import Codebook

pytest.importorskip("tensorflow")
T, F, K, P = 20, 16, 6, 2


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """A FusedEncoder of a random codebook and an untrained tiny t-RAE run, and (N, T, F) windows' power."""
    from audeep_edge.training.fused import FusedEncoder
    from audeep_edge.training.quantize.bundler import use_tensorflow_backend

    use_tensorflow_backend()
    root = tmp_path_factory.mktemp("fused")
    untrained_run(root / "run", tiny_spectrograms(root / "mini.nc"), num_layers=1, seed=3)
    rng = np.random.default_rng(0)
    codebook = Codebook(kernel=rng.normal(size=(P, F, K)).astype(np.float32) / 10,
                        bias=np.zeros(K, np.float32), centre=np.zeros(2 * K + 2 * F, np.float32),
                        scale=np.full(2 * K + 2 * F, 10.0, np.float32), floor_db=-120.0)
    # loud and quiet windows, with structure over time and bands
    level = rng.uniform(-125, -30, (24, 1, 1))  # spoken digits recorded softly peak near -110 dB
    power = 10.0 ** ((level - 75 * rng.random((24, T, F)) ** 2) / 10.0)
    power[::2, :, F // 2:] = 0.0  # no power in the upper bands (8 kHz audio)
    power[1::4, T // 2:] = 0.0  # zero padding after the sound
    power[0] = 0.0  # digital silence
    encoder = FusedEncoder(codebook, root / "run", clip_below=-60)
    return encoder, power


def device_inputs(encoder, power: np.ndarray) -> np.ndarray:
    """(N, T, 2F) inputs of the windows' power, as the device computes them."""
    return np.stack([encoder_input(p, encoder.normalization, encoder.clip_below) for p in power])


def test_each_part_of_the_fused_embedding_is_what_that_encoder_gives_alone(fused):
    from audeep_edge.training.autoencoders.models import pooled_encoder_model

    encoder, power = fused
    inputs = device_inputs(encoder, power)
    assert inputs.shape == (len(power), T, input_bands(encoder.normalization, F)) == (len(power), T, 2 * F)
    encoder.centre = encoder.scale = None
    encoder.whitening = {}
    embedding = encoder.embed(inputs)
    # the codebook, then the t-RAE's representation after every frame averaged and maximised over the window
    assert encoder.embedding_parts == {"codebook": 2 * K + 2 * F, "t-rae-mean": 16, "t-rae-max": 16}
    assert embedding.shape == (len(power), encoder.embedding_size) == (len(power), 2 * K + 2 * F + 32)
    # the codebook reads the absolute level (its floor, -120 dB, above the front end's)
    db = np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB)
    np.testing.assert_allclose(embedding[:, :2 * K + 2 * F], encoder.codebook.embed(db), atol=1e-3)
    # the t-RAE sees each window as auDeep scales its power: relative to its maximum, clipped at -60 dB, in
    # [-1, 1], however quiet the window is
    scaled = np.stack([window_features(p, -60) for p in power])
    pooled = pooled_encoder_model(encoder.autoencoder, ("mean", "max")).predict(scaled, verbose=0)
    alone = np.hstack([pooled["mean"], pooled["max"]])
    np.testing.assert_allclose(embedding[:, 2 * K + 2 * F:], alone, atol=1e-5)
    # 20 dB louder: the codebook's level statistics move, the t-RAE part does not
    louder = encoder.embed(device_inputs(encoder, power * 100.0))
    assert np.abs(louder[:, :2 * K + 2 * F] - embedding[:, :2 * K + 2 * F]).max() > 0.5
    np.testing.assert_allclose(louder[:, 2 * K + 2 * F:], embedding[:, 2 * K + 2 * F:], atol=1e-5)
    # a corpus's dB windows become the same inputs (the recipe's calibration and standardisation windows)
    np.testing.assert_allclose(encoder.inputs(db[1:]), inputs[1:], atol=1e-5)
    encoder.standardise(inputs)
    recurrent = encoder.embed(inputs)[:, 2 * K + 2 * F:]
    np.testing.assert_allclose(recurrent.mean(0), 0.0, atol=1e-4)
    # standardised on the corpus, then each part partially whitened on it (the graph computes the numpy fit)
    assert set(encoder.whitening) == {"codebook", "t-rae-mean", "t-rae-max"}
    standardised = (alone - encoder.centre) / encoder.scale
    np.testing.assert_allclose(recurrent[:, 16:], encoder.whitening["t-rae-max"].apply(standardised[:, 16:]),
                               atol=1e-3)


@pytest.mark.parametrize("precision", ["dynamic", "int8"])
def test_a_fused_bundle_reads_stacked_windows_and_runs_on_litert_close_to_keras(fused, tmp_path, precision):
    from audeep_edge.training.quantize.codebook_bundle import build_bundle

    encoder, power = fused
    inputs = device_inputs(encoder, power)
    encoder.standardise(inputs)
    spec = FrontendConfig(mel_bands=F, window_width=0.08, window_overlap=0.04, sample_rate=44100)
    out = tmp_path / f"fused-{precision}.bundle"
    kinds = np.arange(len(inputs)) % 3  # labelled windows: the converted model's own enrolment threshold
    report = build_bundle(encoder, None, [], spec=spec, window_frames=T, precision=precision, calibration=inputs,
                          check=inputs[:8], check_labels=None, output=out, name=f"fused-{precision}",
                          training={"accuracy_data": "synthetic windows"}, enrol=(inputs, kinds))
    assert report["embedding"]["cosine_mean"] >= 0.99
    bundle = load_bundle(out)
    assert -1 <= bundle.accept_similarity <= 1 and bundle.accept_similarity == round(report["accept_similarity"], 4)
    shipped = read_whitening(out)  # for novelty scoring to undo: the fit the graph computes
    k = 2 * K + 2 * F
    assert {name: span for name, (span, _) in shipped.parts.items()} == {
        "codebook": slice(0, k), "t-rae-mean": slice(k, k + 16), "t-rae-max": slice(k + 16, k + 32)}
    np.testing.assert_allclose(shipped.parts["t-rae-max"][1].gains, encoder.whitening["t-rae-max"].gains)
    assert bundle.normalization == "db+audeep-minmax" and bundle.embedding_size == encoder.embedding_size
    assert bundle.frontend.clip_below == -60 and bundle.input_shape == (1, T, 2 * F)
    runtime = Encoder(bundle.model_path)
    expected = encoder.embed(inputs[8:12])
    for p, want in zip(power[8:12], expected):
        window = encoder_input(p, bundle.normalization, bundle.frontend.clip_below)
        assert cosine(runtime(window).embedding, want) >= 0.99
