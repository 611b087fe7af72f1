"""The runtime side of a bundle: manifest round trip, hash check, compatibility check, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audeep_edge.bundle import MANIFEST, MODEL_FILE, load_bundle, sha256_of, write_manifest
from audeep_edge.errors import ModelError
from audeep_edge.features import FrontendConfig

ESC_FRONTEND = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-60,
                              fixed_length=5.0, center_fixed=True)


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A bundle with an opaque model file (this module never parses the model)."""
    directory = tmp_path / "esc10-int8.bundle"
    directory.mkdir()
    (directory / MODEL_FILE).write_bytes(b"TFL3 model bytes")
    write_manifest(directory, name="esc10-int8", precision="int8", frontend=ESC_FRONTEND,
                   geometry=ESC_FRONTEND.geometry(44100), window_frames=124, embedding_size=1024,
                   labels=["Dog bark", "Rain", "Rooster"], hop_seconds=0.5,
                   training={"dataset": "ESC-10", "license": "CC BY 3.0", "accuracy": 0.8})
    return directory


def test_manifest_round_trip_gives_the_runtime_everything_it_needs(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.precision == "int8" and bundle.name == "esc10-int8"
    assert bundle.frontend.sample_rate == 44100 and bundle.frontend.mel_bands == 128
    assert bundle.frontend.clip_below == -60 and bundle.frontend.fixed_length is None   # streaming: no fixed length
    assert (bundle.geometry.n_fft, bundle.geometry.hop) == (3528, 1764)
    assert bundle.geometry == ESC_FRONTEND.geometry(44100)      # auDeep's frame-count correction is kept
    assert bundle.window_frames == 124 and bundle.input_shape == (1, 124, 128)
    assert bundle.window_seconds == pytest.approx(5.0)
    assert bundle.labels == ["Dog bark", "Rain", "Rooster"] and bundle.embedding_size == 1024
    assert bundle.hop_seconds == 0.5 and bundle.model_path == bundle_dir / MODEL_FILE
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    assert manifest["sha256"] == sha256_of(bundle_dir / MODEL_FILE)
    assert manifest["frontend"]["normalization"] == "audeep-minmax"
    assert manifest["training"]["license"] == "CC BY 3.0" and "audeep_edge" in manifest["versions"]
    assert load_bundle(bundle_dir / MANIFEST).path == bundle_dir      # the manifest path works too
    assert bundle.embedding_parts == {}                                 # one encoder


def test_an_embedding_of_encoders_side_by_side_names_their_spans(tmp_path):
    directory = tmp_path / "fused.bundle"
    directory.mkdir()
    (directory / MODEL_FILE).write_bytes(b"TFL3 model bytes")
    write_manifest(directory, name="fused", precision="dynamic", frontend=ESC_FRONTEND,
                   geometry=ESC_FRONTEND.geometry(44100), window_frames=124, embedding_size=2304,
                   embedding_parts={"codebook": 1280, "t-rae": 1024})
    assert load_bundle(directory).embedding_parts == {"codebook": slice(0, 1280), "t-rae": slice(1280, 2304)}


def test_a_bundle_carries_the_enrolment_threshold_measured_for_its_encoder(tmp_path, bundle_dir):
    assert load_bundle(bundle_dir).accept_similarity is None  # older bundles: the enrolment's fixed default
    directory = tmp_path / "fused.bundle"
    directory.mkdir()
    (directory / MODEL_FILE).write_bytes(b"TFL3 model bytes")
    write_manifest(directory, name="fused", precision="dynamic", frontend=ESC_FRONTEND,
                   geometry=ESC_FRONTEND.geometry(44100), window_frames=124, embedding_size=2304,
                   accept_similarity=0.41237)
    assert load_bundle(directory).accept_similarity == 0.4124


def test_a_corrupt_model_file_is_refused_with_one_line_naming_it(bundle_dir):
    (bundle_dir / MODEL_FILE).write_bytes(b"TFL3 model bytes, flipped")
    with pytest.raises(ModelError, match="sha256") as info:
        load_bundle(bundle_dir)
    assert "\n" not in str(info.value) and str(bundle_dir / MODEL_FILE) in str(info.value)
    assert load_bundle(bundle_dir, verify=False).precision == "int8"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / MANIFEST).unlink(), "has no bundle.json"),
    (lambda d: (d / MODEL_FILE).unlink(), "lacks its model file"),
    (lambda d: (d / MANIFEST).write_text("{not json"), "not valid JSON"),
    (lambda d: _edit(d, lambda m: m.update(schema_version=99)), "schema_version 99"),
    (lambda d: _edit(d, lambda m: m.pop("frontend")), "missing field 'frontend'"),
    (lambda d: _edit(d, lambda m: m["labels"].pop()), "2 labels for 3 class probabilities"),
    (lambda d: _edit(d, lambda m: m["input"].update(shape=[1, 100, 128])), "window_frames=124"),
    (lambda d: _edit(d, lambda m: m["frontend"].update(normalization="z-score")), "normalization 'z-score'"),
    (lambda d: _edit(d, lambda m: m["frontend"].update(clip_below="x")), r"clip-below must be a finite dB value"),
    (lambda d: _edit(d, lambda m: m["frontend"].update(clip_below=5)), r"at or below 0 .* got 5"),
    # the stacked normalization feeds two views of the 128 bands side by side: a 128-wide input cannot take them
    (lambda d: _edit(d, lambda m: m["frontend"].update(normalization="db+audeep-minmax")), r"bins=256"),
    (lambda d: _edit(d, lambda m: m["stream"].update(hop_seconds=-1)), r"hop_seconds -1.0 must be in \(0, 3600\]"),
    (lambda d: _edit(d, lambda m: m["stream"].update(hop_seconds=0)), r"hop_seconds 0.0 must be in \(0, 3600\]"),
    (lambda d: _edit(d, lambda m: m["outputs"].update(embedding_parts={"a": 1000, "b": 1000})),
     "parts add up to 2000, not the embedding size 1024"),
    (lambda d: _edit(d, lambda m: m["outputs"].update(embedding_parts={"a": 1024.0})), "not a positive integer"),
    (lambda d: _edit(d, lambda m: m["outputs"].update(embedding_parts=[1024])), "must map part names to sizes"),
    (lambda d: _edit(d, lambda m: m.update(enroll={"accept_similarity": "x"})), "must be a cosine in"),
    (lambda d: _edit(d, lambda m: m.update(enroll={"accept_similarity": 1.5})), "must be a cosine in"),
    (lambda d: _edit(d, lambda m: m.update(enroll={"accept_similarity": True})), "must be a cosine in"),
    (lambda d: _edit(d, lambda m: m.update(enroll=[0.5])), "must be a table"),
    # a hash that matches does not make a file outside the bundle its model
    (lambda d: _edit(d, lambda m: m.update(model_file="../../../../../../../../etc/passwd",
                                           sha256=sha256_of(Path("/etc/passwd")))), "outside the bundle directory"),
    (lambda d: _edit(d, lambda m: m.update(model_file="/etc/passwd", sha256=sha256_of(Path("/etc/passwd")))),
     "outside the bundle directory"),
])
def test_a_damaged_bundle_is_a_one_line_model_error(bundle_dir, damage, message):
    damage(bundle_dir)
    with pytest.raises(ModelError, match=message) as info:
        load_bundle(bundle_dir)
    assert "\n" not in str(info.value)


def test_a_missing_bundle_directory_names_the_path(tmp_path):
    with pytest.raises(ModelError, match="nowhere.bundle does not exist"):
        load_bundle(tmp_path / "nowhere.bundle")


def _edit(directory: Path, change) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_the_bundle_accepts_its_own_front_end_and_refuses_a_different_one(bundle_dir):
    bundle = load_bundle(bundle_dir)
    bundle.check_compatible(bundle.frontend)
    bundle.check_compatible(ESC_FRONTEND)          # no sample rate asked: the runtime resamples to the bundle's
    with pytest.raises(ModelError, match="mel-bands=128 but the front-end config asks for 64") as info:
        bundle.check_compatible(FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=64, clip_below=-60))
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="sample-rate=44100 .* asks for 16000"):
        bundle.check_compatible(FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128,
                                               clip_below=-60, sample_rate=16000))
    with pytest.raises(ModelError, match="clip-below=-60"):
        bundle.check_compatible(FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-45))


def test_reading_a_bundle_never_imports_tensorflow_or_keras(bundle_dir):
    code = ("import sys; from audeep_edge.bundle import load_bundle; load_bundle(sys.argv[1]); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(bundle_dir)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
