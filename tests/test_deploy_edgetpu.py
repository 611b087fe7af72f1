"""`audeep-edge adopt-edgetpu`: the compiler's output becomes the bundle's model, the CPU model stays beside it."""

from __future__ import annotations

import json
import shutil

import pytest
from stream_testing import TINY_INT8, assert_one_error_line, run_cli

from audeep_edge.bundle import load_bundle, sha256_of
from audeep_edge.deploy.edgetpu_bundle import adopt_compiled_model
from audeep_edge.errors import ModelError


@pytest.fixture
def edgetpu_bundle(tmp_path):
    """What `quantize --precision edgetpu` writes: an int8 model (here the test one) in an edgetpu bundle."""
    bundle = tmp_path / "tiny-edgetpu.bundle"
    shutil.copytree(TINY_INT8, bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**manifest, "precision": "edgetpu"}, indent=2))
    return bundle


def compile_stand_in(bundle):
    """Stands in for `edgetpu_compiler -s -o edgetpu model.tflite` (x86 only, not installed here): the model
    with the compiler's custom-op name in it, at the compiler's output path."""
    out = bundle / "edgetpu" / "model_edgetpu.tflite"
    out.parent.mkdir()
    out.write_bytes((bundle / "model.tflite").read_bytes() + b"edgetpu-custom-op")
    return out


def test_the_compiled_model_becomes_the_bundles_model_with_its_hash(edgetpu_bundle):
    compiled = compile_stand_in(edgetpu_bundle)
    done = run_cli("adopt-edgetpu", edgetpu_bundle)
    assert done.returncode == 0, done.stderr
    assert "model_file model_edgetpu.tflite" in done.stdout and "--delegate edgetpu" in done.stdout
    manifest = json.loads((edgetpu_bundle / "bundle.json").read_text())
    assert manifest["model_file"] == "model_edgetpu.tflite" and manifest["cpu_model_file"] == "model.tflite"
    assert manifest["sha256"] == sha256_of(compiled)
    bundle = load_bundle(edgetpu_bundle)  # verifies the new hash
    assert bundle.model_path.name == "model_edgetpu.tflite" and (edgetpu_bundle / "model.tflite").is_file()
    assert adopt_compiled_model(edgetpu_bundle).manifest == manifest  # running it again changes nothing


def test_an_uncompiled_model_or_a_missing_one_is_refused(edgetpu_bundle, tmp_path):
    with pytest.raises(ModelError, match="no edgetpu-custom-op"):
        adopt_compiled_model(edgetpu_bundle, edgetpu_bundle / "model.tflite")
    done = run_cli("adopt-edgetpu", edgetpu_bundle)
    assert_one_error_line(done, "cannot read the compiled model", "edgetpu_compiler -s -o edgetpu model.tflite")
    assert json.loads((edgetpu_bundle / "bundle.json").read_text())["model_file"] == "model.tflite"


def test_only_an_edgetpu_bundle_is_adopted():
    with pytest.raises(ModelError, match="is int8; make one with `audeep-edge quantize RUN --precision edgetpu`"):
        adopt_compiled_model(TINY_INT8)
