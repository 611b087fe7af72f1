"""``t-rae train|generate`` and ``f-rae generate`` on real ESC-10 clips; the GPU script on JAX."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

from audeep_edge.dataset import load_dataset
from audeep_edge.dataset.parsers import get_parser
from audeep_edge.dataset.preprocess import preprocess
from audeep_edge.features import FrontendConfig
from audeep_edge.training import runs
from audeep_edge.training.autoencoders import FrequencyAutoencoderConfig, build_autoencoder
from audeep_edge.training.generate import generate_representations
from audeep_edge.training.gpu_pack import main as gpu_pack_main
from audeep_edge.training.gpu_pack import pack, unpack

ROOT = Path(__file__).resolve().parents[1]
ESC_MINI = ROOT / "tests" / "data" / "esc_mini"
TINY = ["--num-units", "8", "--batch-size", "8", "--seed", "0"]




@pytest.fixture(scope="module")
def spectrograms(tmp_path_factory) -> Path:
    """The 15 esc_mini clips as 1 s, 16-band spectrograms (24 frames), saved as netCDF."""
    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=16, clip_below=-60, fixed_length=1.0,
                         center_fixed=True)
    path = tmp_path_factory.mktemp("spectrograms") / "esc-mini.nc"
    preprocess(get_parser(None, ESC_MINI), cfg).dataset.save(path)
    return path


def test_t_rae_train_then_generate_from_netcdf_and_from_audio(spectrograms, tmp_path, capsys):
    run = tmp_path / "t-1x8-x-b"
    args = ["t-rae", "train", "--input", spectrograms, "--run-name", run, "--num-epochs", "2",
            "--bidirectional-decoder", "--checkpoints-to-keep", "1", *TINY]
    assert cli(capsys, *args)[0] == 0
    source = load_dataset(spectrograms)
    config = json.loads((run / "config.json").read_text())
    assert config["frontend"] == source.frontend and config["input_shape"] == [24, 16]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0002.weights.h5"]

    code, _, err = cli(capsys, *args)                                   # never overwrite a run
    assert code == 2 and "--continue" in err.splitlines()[-1] and err.splitlines()[-1].startswith("error: ")

    out = tmp_path / "representations.nc"
    assert cli(capsys, "t-rae", "generate", "--model-dir", run, "--input", spectrograms, "--output", out)[0] == 0
    generated = load_dataset(out)
    assert generated.feature_dims == ["generated"] and generated.features.shape == (15, 2 * 8)
    for name in ("filenames", "chunk_nrs", "label_nominal", "label_numeric", "cv_folds", "partitions_"):
        assert np.array_equal(getattr(generated, name), getattr(source, name)), name
    assert generated.label_map == source.label_map and generated.frontend == source.frontend

    from_audio = tmp_path / "from-audio.nc"                          # the run's own front end on the clips
    assert cli(capsys, "t-rae", "generate", "--model-dir", run, "--input", ESC_MINI, "--output", from_audio)[0] == 0
    assert np.allclose(load_dataset(from_audio).features, generated.features, atol=1e-5)
    one_clip = tmp_path / "one.nc"
    clip = ESC_MINI / "002 - Rain" / "1-17367-A.ogg"
    assert cli(capsys, "t-rae", "generate", "--model-dir", run, "--input", clip, "--output", one_clip)[0] == 0
    row = list(source.filenames).index(next(f for f in source.filenames if f.endswith("1-17367-A.ogg")))
    assert np.allclose(load_dataset(one_clip).features[0], generated.features[row], atol=1e-5)

    code, _, err = cli(capsys, "f-rae", "generate", "--model-dir", run, "--input", spectrograms, "--output", out)
    assert code == 2 and "t-rae generate" in err

    config["architecture"]["legacy_decoder"] = False           # runs from before --legacy-decoder was removed
    (run / "config.json").write_text(json.dumps(config))
    assert cli(capsys, "t-rae", "generate", "--model-dir", run, "--input", spectrograms, "--output", out)[0] == 0
    config["architecture"]["legacy_decoder"] = True
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = cli(capsys, "t-rae", "generate", "--model-dir", run, "--input", spectrograms, "--output", out)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "--legacy-decoder" in err and "removed in favour of the corrected decoder; retrain the run" in err


def test_f_rae_generate_writes_one_vector_per_frame(spectrograms, tmp_path, capsys):
    source = load_dataset(spectrograms)
    config = FrequencyAutoencoderConfig(num_units=8, freq_window_width=8, freq_window_overlap=4)
    run = tmp_path / "f-rae"                       # an untrained run: generate only needs config and weights
    runs.write_run_config(run, config, (24, 16), training={}, frontend=source.frontend)
    build_autoencoder(config, (24, 16)).save_weights(run / runs.WEIGHTS_FILE)
    out = tmp_path / "frames.nc"
    assert cli(capsys, "f-rae", "generate", "--model-dir", run, "--input", spectrograms, "--output", out)[0] == 0
    generated = load_dataset(out)
    assert generated.feature_dims == ["time", "generated"] and generated.features.shape == (15, 24, 8)
    assert np.array_equal(generated.filenames, source.filenames)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)")
def test_gpu_script_trains_on_jax_and_its_run_loads_on_tensorflow(spectrograms, tmp_path):
    pack(spectrograms, tmp_path / "npz")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, ROOT / "train" / "gpu_train.py", "--data", tmp_path / "npz", "--out",
                           tmp_path / "out", "--epochs", "2", "--snapshot-every", "1", "--num-layers", "1",
                           "--num-units", "8", "--batch-size", "4"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert timings["backend"] == "jax" and timings["tensorflow_imported"] is False
    setting = timings["settings"]["esc-mini"]
    assert setting["num_examples"] == 15 and [e["epoch"] for e in setting["epochs"]] == [1, 2]
    assert setting["epochs"][0]["examples_per_s"] > 0
    run = tmp_path / "out" / "esc-mini"
    source = load_dataset(spectrograms)
    assert json.loads((run / "config.json").read_text())["frontend"] == source.frontend
    assert sorted(p.name for p in run.glob("representations-*.npz")) == ["representations-e0001.npz",
                                                                         "representations-e0002.npz"]
    # the last snapshot (JAX) unpacked here is what `t-rae generate` makes of the final weights on TensorFlow
    snapshot = load_dataset(unpack(run / "representations-e0002.npz", spectrograms, tmp_path / "reps.nc"))
    np.testing.assert_allclose(snapshot.features, generate_representations(run, source.features), atol=1e-3)
    assert snapshot.features.shape == (15, 16) and list(snapshot.label_nominal) == list(source.label_nominal)
    assert np.array_equal(snapshot.cv_folds, source.cv_folds)


def test_a_snapshot_of_other_instances_does_not_unpack(spectrograms, tmp_path, capsys):
    np.savez(tmp_path / "snapshot.npz", features=np.zeros((8, 16), np.float32), filenames=np.array(["x.wav"] * 8))
    with pytest.raises(SystemExit) as exit_info:
        gpu_pack_main(["--metadata", str(spectrograms), "--output", str(tmp_path / "reps.nc"),
                       str(tmp_path / "snapshot.npz")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "its instances are not those of" in err and err.count("\n") == 1
    assert not (tmp_path / "reps.nc").exists()
