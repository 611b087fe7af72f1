"""The LiteRT wrapper: signature lookup, int8 (de)quantisation, delegates and their fallback, bad models."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from stream_testing import DATA, TINY, TINY_INT8, cosine

from audeep_edge.audio import read_audio
from audeep_edge.bundle import load_bundle
from audeep_edge.encoder import Encoder, count_subgraphs
from audeep_edge.encoder.model_file import shares_packed_weights
from audeep_edge.errors import ModelError
from audeep_edge.features import extract
from audeep_edge.training.quantize.flatbuffer import share_step_quantization


@pytest.fixture(scope="module")
def real_windows() -> np.ndarray:
    """Feature windows of real ESC-10 clips with the tiny bundle's front end [shape=(N, 24, 32)]."""
    bundle = load_bundle(TINY)
    windows = []
    for path in sorted((DATA / "esc_mini").rglob("*.ogg"))[::5]:
        samples, fs = read_audio(path)
        clip = extract(samples, fs, bundle.frontend).chunks[0]
        windows += [clip[i:i + 24] for i in range(0, clip.shape[0] - 24, 30)]
    return np.stack(windows)


def test_outputs_have_the_bundle_sizes_and_probabilities_sum_to_one(real_windows):
    bundle = load_bundle(TINY)
    encoder = Encoder(bundle.model_path)
    out = encoder(real_windows[0])
    assert encoder.input_shape == bundle.input_shape == (1, 24, 32)
    assert out.embedding.shape == (bundle.embedding_size,) and out.embedding.dtype == np.float32
    assert out.probabilities.shape == (len(bundle.labels),)
    assert out.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_int8_model_is_quantised_and_dequantised_to_the_float_model(real_windows):
    """The int8 bundle (int8 input/output tensors, names stripped) agrees with the float one on real audio."""
    fp32, int8 = Encoder(load_bundle(TINY).model_path), Encoder(load_bundle(TINY_INT8).model_path)
    for window in real_windows:
        a, b = fp32(window), int8(window)
        assert cosine(a.embedding, b.embedding) >= 0.98
        assert np.abs(a.probabilities - b.probabilities).max() <= 0.03


@pytest.mark.parametrize("bundle", [TINY, TINY_INT8])
def test_xnnpack_and_plain_kernels_agree(real_windows, bundle):
    path = load_bundle(bundle).model_path
    plain, xnnpack = Encoder(path, delegate="none"), Encoder(path, delegate="xnnpack", threads=2)
    assert xnnpack.delegate == "xnnpack"
    for window in real_windows[:5]:
        assert cosine(plain(window).embedding, xnnpack(window).embedding) >= 0.999


def test_auto_uses_xnnpack_for_while_loops_and_plain_kernels_for_per_step_quantised_graphs():
    """XNNPACK packs int8 weights with their node's requantisation: once for a WHILE loop, once per step when
    unrolled with per-step quantisation (tiny-int8 is such an older bundle)."""
    while_loop, unrolled = load_bundle(TINY).model_path, load_bundle(TINY_INT8).model_path
    assert count_subgraphs(while_loop) == 5 and count_subgraphs(unrolled) == 1
    assert Encoder(while_loop).delegate == "xnnpack" and Encoder(unrolled).delegate == "none"
    assert count_subgraphs(TINY / "bundle.json") == 0


def test_int8_with_one_quantisation_per_weight_matrix_runs_on_the_weight_cache(real_windows, tmp_path):
    """What `quantize` writes now: every step of the unrolled int8 graph shares its weight matrices'
    quantisation, so CompiledModel's cache packs each matrix once, with the plain kernels' results."""
    old = load_bundle(TINY_INT8).model_path
    data, requantised = share_step_quantization(old.read_bytes())
    new = tmp_path / "model.tflite"
    new.write_bytes(data)
    assert requantised > 0 and not shares_packed_weights(old) and shares_packed_weights(new)
    cached, plain, before = Encoder(new), Encoder(new, delegate="none"), Encoder(old, delegate="none")
    assert "CompiledModel" in cached.backend and cached.delegate == "xnnpack"
    for window in real_windows:
        embedding = cached(window).embedding
        assert cosine(embedding, plain(window).embedding) >= 0.999
        assert cosine(embedding, before(window).embedding) >= 0.99


def test_missing_edgetpu_falls_back_to_cpu_with_a_warning_or_fails_when_required(real_windows, caplog):
    path = load_bundle(TINY).model_path
    with caplog.at_level(logging.WARNING):
        encoder = Encoder(path, delegate="edgetpu")
    assert encoder.delegate == "none"
    assert any("libedgetpu" in r.getMessage() and "CPU" in r.getMessage() for r in caplog.records)
    assert np.allclose(encoder(real_windows[0]).embedding, Encoder(path)(real_windows[0]).embedding)
    with pytest.raises(ModelError, match="--delegate edgetpu: cannot load libedgetpu"):
        Encoder(path, delegate="edgetpu", require_delegate=True)


def test_a_corrupt_model_is_a_model_error_naming_the_file(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"TFL3" + bytes(range(256)) * 8)
    with pytest.raises(ModelError, match="model.tflite: not a loadable TFLite model"):
        Encoder(bad)



@pytest.mark.parametrize("ending", ["del encoder", "pass"])
def test_litert_native_log_lines_stay_off_stderr(ending):
    """LiteRT's CompiledModel environment logs ~20 lines when created and destroyed; none reach the user."""
    import subprocess
    import sys

    code = (f"from audeep_edge.encoder import Encoder\nencoder = Encoder({str(load_bundle(TINY).model_path)!r})\n"
            f"print(encoder.backend)\n{ending}\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "CompiledModel" in done.stdout and done.stderr == ""
