"""``audeep-edge quantize``: every precision converts and runs on LiteRT, parity, bundles, Edge TPU ops, errors.

A tiny real t-RAE run (1 x 8 GRU, windows of 20 frames x 16 mel bands from the committed ESC-10 clips) keeps
the conversions to a few seconds each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, tiny_spectrograms, untrained_run
from stream_testing import cosine

from audeep_edge.bundle import load_bundle
from audeep_edge.encoder import Encoder
from audeep_edge.encoder.model_file import shares_packed_weights
from audeep_edge.errors import DataError, ModelError

pytest.importorskip("tensorflow")
T, F = 20, 16
ESC_MINI = Path(__file__).parent / "data" / "esc_mini"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A spectrogram file, a training run on it and a classifier head: ``(nc_path, run_dir, head_dir)``."""
    import keras

    from audeep_edge.dataset import load_dataset
    from audeep_edge.training.heads import save_head

    root = tmp_path_factory.mktemp("quantize")
    nc = tiny_spectrograms(root / "mini.nc")
    ds = load_dataset(nc)
    assert ds.features.shape[1:] == (T, F)
    untrained_run(root / "run", nc, num_layers=1, seed=3)
    labels = sorted(set(ds.label_nominal))
    head = keras.Sequential([keras.Input((16,)),  # 1 x 8 GRU, bidirectional decoder: 16-d representation
                             keras.layers.Dense(len(labels), activation="softmax")])
    save_head(root / "head", head, labels, {})
    return nc, root / "run", root / "head"


@pytest.fixture(scope="module")
def graphs(tiny, tmp_path_factory):
    """Keras reference model, SavedModels (trained and unrolled graph), calibration and held-out windows."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.training.heads import load_head
    from audeep_edge.training.quantize.graph import deployable_model, export_saved_model
    from audeep_edge.training.runs import load_encoder

    nc, run, head_dir = tiny
    head, _ = load_head(head_dir)
    reference = deployable_model(load_encoder(run), head)
    unrolled = deployable_model(load_encoder(run, unroll=True), head)
    root = tmp_path_factory.mktemp("saved")
    export_saved_model(reference, root / "while")
    export_saved_model(unrolled, root / "unrolled")
    windows = load_dataset(nc).features
    held_out = windows[1::3]
    expected = {k: np.asarray(v) for k, v in reference.predict(held_out, verbose=0).items()}
    return {"while": root / "while", "unrolled": root / "unrolled", "calibration": windows[0::3],
            "held_out": held_out, "expected": expected}


@pytest.fixture(scope="module")
def raw_models(graphs):
    """Converter output per precision (converted in this process: the child process is tested separately)."""
    from audeep_edge.training.quantize.convert import UNROLLED_PRECISIONS, convert_saved_model

    cache = {}

    def get(precision: str) -> bytes:
        if precision not in cache:
            integer = precision in UNROLLED_PRECISIONS
            cache[precision] = convert_saved_model(str(graphs["unrolled" if integer else "while"]), precision,
                                                   graphs["calibration"] if integer else None)
        return cache[precision]

    return get


# cosine (mean) of quantized vs Keras embeddings each precision must reach on the tiny model
MIN_COSINE = {"float32": 0.9999, "float16": 0.999, "dynamic": 0.999, "int8": 0.99, "edgetpu": 0.99}


@pytest.mark.parametrize("precision", list(MIN_COSINE))
def test_every_precision_converts_and_runs_on_litert_close_to_keras(graphs, raw_models, precision):
    from audeep_edge.training.quantize.bundle_writer import finish_model
    from audeep_edge.training.quantize.parity import TfliteSignature, parity

    model = finish_model(raw_models(precision), precision)
    out = TfliteSignature(model).predict(graphs["held_out"])
    n = len(graphs["held_out"])
    assert out["embedding"].shape == (n, 16) and out["probabilities"].shape == (n, 3)
    assert np.allclose(out["probabilities"].sum(axis=1), 1.0, atol=0.02)
    report = parity(graphs["expected"], out)
    assert report["embedding"]["cosine_mean"] >= MIN_COSINE[precision]
    if precision == "float32":
        assert report["embedding"]["cosine_min"] >= 0.9999
    assert report["classes"]["agreement"] >= 0.9


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_the_gru_rewrite_computes_what_the_trained_encoder_computes(layers, bidirectional):
    """gru_graph (hoisted input products, 1 - z folded into the weights) equals Keras' GRU, both directions, for
    the final states and for the representation pooled over every step."""
    import keras

    from audeep_edge.training.autoencoders import TimeAutoencoderConfig, build_autoencoder, encoder_model
    from audeep_edge.training.autoencoders.models import pooled_encoder_model
    from audeep_edge.training.quantize import gru_graph

    keras.utils.set_random_seed(5)
    config = TimeAutoencoderConfig(num_layers=layers, num_units=8, bidirectional_encoder=bidirectional)
    autoencoder = build_autoencoder(config, (T, F))
    for layer in autoencoder.encoder.rnns:                       # trained-looking gates: some near 0 or 1
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel * 3, recurrent * 3, bias + np.linspace(-4, 4, bias.size)])
    x = np.random.default_rng(1).uniform(-1, 1, (4, T, F)).astype(np.float32)
    expected = encoder_model(autoencoder).predict(x, verbose=0)["embedding"]
    inference = gru_graph.encoder_model(autoencoder)
    got = np.concatenate([inference.predict(window[None], verbose=0)["embedding"] for window in x])
    assert gru_graph.supports(autoencoder) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # pooled over the window (the fused default's t-RAE parts): the same in Keras and in the inference graph, the
    # backward stack's steps in time order; "final" is auDeep's embedding
    pooling = ("mean", "max", "final")
    keras_pooled = pooled_encoder_model(autoencoder, pooling).predict(x, verbose=0)
    graph = gru_graph.pooled_encoder_model(autoencoder, pooling)
    for name in pooling:
        got = np.concatenate([graph.predict(window[None], verbose=0)[name] for window in x])
        np.testing.assert_allclose(got, keras_pooled[name], atol=1e-5)
    np.testing.assert_allclose(keras_pooled["final"], expected, atol=1e-6)
    steps = autoencoder.representation(autoencoder.encoder.step_states(x))
    np.testing.assert_allclose(keras_pooled["max"], np.max(steps, axis=1), atol=1e-6)
    if not bidirectional:  # a forward-only encoder's last step is its final state
        np.testing.assert_allclose(np.asarray(steps)[:, -1], expected, atol=1e-5)


def test_integer_models_compute_in_int8_and_edgetpu_has_only_edge_tpu_ops(raw_models):
    from audeep_edge.training.quantize import edgetpu, flatbuffer
    from audeep_edge.training.quantize.bundle_writer import finish_model

    int8 = edgetpu.check_ops(finish_model(raw_models("int8"), "int8"))
    assert int8.subgraphs == 1 and int8.float_ops == []          # int8 end to end, input and output included
    assert int8.unsupported_ops == ["UNPACK"]                      # fine on a CPU, not on the Edge TPU
    tpu_model = finish_model(raw_models("edgetpu"), "edgetpu")
    tpu = edgetpu.check_ops(tpu_model)
    assert tpu.ready and tpu.to_dict()["ready"], tpu
    assert "UNPACK" not in flatbuffer.op_counts(tpu_model) and "WHILE" not in flatbuffer.op_counts(tpu_model)
    assert not edgetpu.check_ops(finish_model(raw_models("float32"), "float32")).ready   # WHILE loop, float


@pytest.mark.parametrize("precision", ["int8", "edgetpu"])
def test_compaction_shrinks_the_model_and_keeps_outputs_bit_identical(graphs, raw_models, precision):
    from audeep_edge.training.quantize.bundle_writer import finish_model
    from audeep_edge.training.quantize.flatbuffer import compact
    from audeep_edge.training.quantize.parity import TfliteSignature, cosine_rows

    raw = raw_models(precision)
    compacted, final = compact(raw), finish_model(raw, precision)
    assert len(compacted) < 0.6 * len(raw)     # tensor names and repeated quantisation tables are gone
    windows = graphs["held_out"]
    before, after = TfliteSignature(raw).predict(windows), TfliteSignature(compacted).predict(windows)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    # the UNPACK rewrite and float-island requantisation may move a value by one int8 step at most
    assert cosine_rows(before["embedding"], TfliteSignature(final).predict(windows)["embedding"]).min() > 0.999


def test_a_float_island_in_an_int8_graph_is_moved_to_int8():
    """tests/data/float-island-int8.tflite: Dense(24) -> split in 3 -> two of them used, converted to int8 by
    TF 2.21 in a run where the quantiser left the SPLIT (dead output) in float between DEQUANTIZE/QUANTIZE."""
    from audeep_edge.training.quantize import edgetpu, flatbuffer
    from audeep_edge.training.quantize.parity import TfliteSignature

    raw = (Path(__file__).parent / "data" / "float-island-int8.tflite").read_bytes()
    assert edgetpu.check_ops(raw).float_ops == ["DEQUANTIZE", "QUANTIZE", "SPLIT"]
    fixed, moved = flatbuffer.requantize_float_islands(raw)
    assert moved == 1 and edgetpu.check_ops(fixed).ready
    assert "DEQUANTIZE" not in flatbuffer.op_counts(fixed)
    windows = np.random.default_rng(0).uniform(-1, 1, (20, 4, 6)).astype(np.float32)
    before, after = TfliteSignature(raw), TfliteSignature(fixed)
    step = before.outputs["embedding"]["quantization"][0]
    np.testing.assert_allclose(before.predict(windows)["embedding"], after.predict(windows)["embedding"],
                               atol=1.01 * step)


def test_an_edgetpu_model_with_a_dynamic_shape_is_refused_before_it_reaches_the_compiler():
    """The Edge TPU compiler needs every tensor size fixed: a free batch dimension (shape signature -1) is
    reported, and finish_model refuses to make such an edgetpu bundle."""
    from audeep_edge.training.quantize import edgetpu, flatbuffer
    from audeep_edge.training.quantize.bundle_writer import finish_model

    model = flatbuffer.read_model((Path(__file__).parent / "data" / "float-island-int8.tflite").read_bytes())
    fixed, _ = flatbuffer.requantize_float_islands(flatbuffer.write_model(model))
    model = flatbuffer.read_model(fixed)
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shapeSignature = [-1, *graph.tensors[graph.inputs[0]].shape[1:]]
    dynamic = flatbuffer.write_model(model)
    check = edgetpu.check_ops(dynamic)
    assert edgetpu.check_ops(fixed).ready and not check.ready
    assert check.dynamic_tensors == 1 and check.problems() == "1 tensor(s) of dynamic shape"
    with pytest.raises(ModelError, match="not one the Edge TPU compiler takes whole .1 tensor.s. of dynamic shape"):
        finish_model(dynamic, "edgetpu")


def test_quantize_cli_writes_a_verified_bundle_with_parity_and_accuracy(tiny, tmp_path, capsys, monkeypatch):
    nc, run, head = tiny
    bundle_dir = tmp_path / "tiny-int8.bundle"
    monkeypatch.setenv("FORCE_COLOR", "1")  # stderr counts as a terminal: the progress of each long step shows
    code, out, err = cli(capsys, "quantize", run, "--precision", "int8", "--output", bundle_dir, "--head", head,
                         "--eval-data", nc, "--eval-fold", 2, "--calibration-windows", 30,
                         "--data-license", "CC BY 3.0")
    assert code == 0, err
    assert "converting to int8" in err and "measuring parity on 18 windows" in err
    assert "accuracy float" in out and "embedding cosine mean" in out and f"wrote {bundle_dir}" in out
    bundle = load_bundle(bundle_dir)           # sha256 checked
    assert bundle.precision == "int8" and bundle.labels == ["Dog bark", "Rain", "Rooster"]
    assert bundle.input_shape == (1, T, F) and bundle.embedding_size == 16
    assert (bundle.geometry.n_fft, bundle.geometry.hop, bundle.frontend.sample_rate) == (3528, 1764, 44100)
    assert bundle.manifest["training"]["dataset"] == "mini" and bundle.manifest["training"]["license"] == "CC BY 3.0"
    report = json.loads((bundle_dir / "parity.json").read_text())
    assert report["windows"] == 18 and "fold 2" in report["data"]      # the validation split of fold 2
    assert report["classes"]["accuracy_float"] == bundle.manifest["training"]["accuracy_float"]
    assert abs(report["classes"]["accuracy_delta_points"]) <= 100 * (1 - report["classes"]["agreement"]) + 1e-9
    assert report["model_bytes"] == bundle.model_path.stat().st_size and report["ops"]["FULLY_CONNECTED"] > 0
    # the GRU rewrite (gru_graph) slices frames with STRIDED_SLICE: no UNPACK, every op in Coral's table
    assert report["edgetpu"]["ready"] is True and "UNPACK" not in report["ops"]
    assert bundle.manifest["input"]["dtype"] == "int8"
    # one quantisation per weight matrix: the runtime packs each matrix once (weight cache), same results
    assert shares_packed_weights(bundle.model_path)
    cached, plain = Encoder(bundle.model_path), Encoder(bundle.model_path, delegate="none")
    assert "CompiledModel" in cached.backend
    for window in np.random.default_rng(1).uniform(-1, 1, (3, T, F)).astype(np.float32):
        assert cosine(cached(window).embedding, plain(window).embedding) >= 0.999

    # the same model loads with tf.lite (what devices without ai-edge-litert fall back to)
    import tensorflow as tf

    from audeep_edge.training.quantize.parity import TfliteSignature

    windows = np.random.default_rng(0).uniform(-1, 1, (3, T, F)).astype(np.float32)
    model = bundle.model_path.read_bytes()
    via_tf = TfliteSignature(model, interpreter_class=tf.lite.Interpreter).predict(windows)
    via_litert = TfliteSignature(model).predict(windows)
    np.testing.assert_array_equal(via_tf["embedding"], via_litert["embedding"])


def test_quantize_uses_the_tensorflow_backend_whatever_keras_backend_says(tiny, tmp_path):
    """A GPU box exports KERAS_BACKEND=jax for training; quantize must still build its graph on TensorFlow
    (on JAX, Model.export gives resource variables and BATCH_MATMULs: not a deployable model)."""
    import os
    import subprocess

    from audeep_edge.training.quantize import flatbuffer

    pytest.importorskip("jax")
    _, run, _ = tiny
    command = [str(Path(sys.executable).with_name("audeep-edge")), "quantize", str(run), "--precision", "float32",
               "--output", str(tmp_path / "b.bundle")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr
    assert "KERAS_BACKEND=jax: quantize loads the run on the tensorflow backend" in done.stderr
    ops = flatbuffer.op_counts((tmp_path / "b.bundle" / "model.tflite").read_bytes())
    assert "FULLY_CONNECTED" in ops and not {"VAR_HANDLE", "BATCH_MATMUL", "CALL_ONCE"} & set(ops)


def test_a_converter_crash_in_the_child_is_a_one_line_cli_error(tiny, tmp_path, capsys, monkeypatch):
    from audeep_edge.training.quantize import convert

    monkeypatch.setattr(convert, "CHILD_COMMAND", [sys.executable, "-c", "import os; os.abort()"])
    _, run, _ = tiny
    code, _, err = cli(capsys, "quantize", run, "--precision", "float32", "--output", tmp_path / "b.bundle")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "error: the TFLite converter crashed (SIGABRT) while converting to float32")
    assert not (tmp_path / "b.bundle").exists()     # nothing half-written


def test_a_converter_exception_in_the_child_is_reported(tmp_path):
    from audeep_edge.training.quantize.convert import convert_in_child

    with pytest.raises(ModelError, match="TFLite conversion to dynamic failed: ") as info:
        convert_in_child(tmp_path / "no-saved-model", "dynamic", None)
    assert "\n" not in str(info.value)


def test_calibration_windows_come_from_audio_through_the_runs_front_end(tiny):
    from audeep_edge.training.quantize.bundler import run_facts
    from audeep_edge.training.quantize.windows import sample_windows

    nc, run, _ = tiny
    facts = run_facts(run)
    assert facts.input_path == nc and facts.window_shape == (T, F) and facts.geometry.n_fft == 3528
    windows = sample_windows(ESC_MINI, facts.window_shape, facts.frontend, 20)
    assert windows.shape == (20, T, F) and windows.dtype == np.float32
    assert windows.min() >= -1 and windows.max() <= 1
    with pytest.raises(DataError, match="holds windows of shape"):
        sample_windows(ESC_MINI, (T + 1, F), facts.frontend, 5)


@pytest.mark.parametrize("args, message", [
    (["--precision", "int4"], "--precision must be one of float32, float16, dynamic, int8, edgetpu"),
    (["--precision", "int8", "--eval-fold", "2"], "--eval-fold needs --eval-data"),
    (["--precision", "int8", "--eval-data", "{nc}", "--eval-fold", "9"], "--eval-fold 9: .* has 5 cross-validation"),
    (["--precision", "int8", "--head", "{run}"], "labels.json: missing"),
    (["--precision", "int8", "--calibration", "{run}"], "contains no audio files"),
])
def test_bad_options_exit_2_with_one_line(tiny, tmp_path, capsys, args, message):
    import re

    nc, run, _ = tiny
    args = [a.format(nc=nc, run=run) for a in args]
    code, _, err = cli(capsys, "quantize", run, "--output", tmp_path / "b.bundle", *args)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(message, last), err


def test_without_its_training_data_a_run_needs_calibration(tiny, tmp_path, capsys):
    import shutil

    run = tmp_path / "moved-run"
    shutil.copytree(tiny[1], run)
    config = json.loads((run / "config.json").read_text())
    config["training"]["inputs"] = ["elsewhere/spectrograms.nc"]
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = cli(capsys, "quantize", run, "--precision", "int8", "--output", tmp_path / "b.bundle")
    assert code == 2
    assert "was trained on elsewhere/spectrograms.nc, which is not here; pass --calibration" in err


def test_a_directory_that_is_not_a_run_is_refused(tmp_path, capsys):
    code, _, err = cli(capsys, "quantize", tmp_path, "--precision", "float32", "--output", tmp_path / "b.bundle")
    assert code == 2 and "not a training run" in err


def test_an_existing_non_bundle_output_is_not_overwritten(tiny, tmp_path, capsys):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    code, _, err = cli(capsys, "quantize", tiny[1], "--precision", "float32", "--output", tmp_path / "precious")
    assert code == 2 and "exists and is not a bundle" in err
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"
