"""Put a model compiled by ``edgetpu_compiler`` into its bundle, so ``listen --delegate edgetpu`` runs it.

``audeep-edge quantize --precision edgetpu`` writes an int8 ``model.tflite`` that the compiler accepts;
``edgetpu_compiler -s -o edgetpu model.tflite`` (x86-64 only) writes ``edgetpu/model_edgetpu.tflite``, whose
TPU part is one ``edgetpu-custom-op``. :func:`adopt_compiled_model` copies that file into the bundle and points
``bundle.json`` at it (``model_file``, ``sha256``), keeping the uncompiled model beside it as ``cpu_model_file``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from audeep_edge.bundle import MANIFEST, Bundle, load_bundle, sha256_of
from audeep_edge.errors import ConfigError, ModelError

COMPILED_FILE = "model_edgetpu.tflite"
DEFAULT_COMPILED = Path("edgetpu") / COMPILED_FILE  # where `edgetpu_compiler -s -o edgetpu model.tflite` writes
CUSTOM_OP = b"edgetpu-custom-op"


def adopt_compiled_model(bundle_dir: Path, compiled: Path | None = None) -> Bundle:
    """Make ``compiled`` (default ``BUNDLE/edgetpu/model_edgetpu.tflite``) the bundle's model; return the bundle
    as re-loaded (hash verified).

    Raises
    ------
    ModelError : the bundle does not load or is not an edgetpu bundle; ``compiled`` is missing or holds no
        ``edgetpu-custom-op`` (not compiled, or nothing mapped to the TPU).
    """
    bundle = load_bundle(bundle_dir)
    if bundle.precision != "edgetpu":
        raise ModelError(f"bundle {bundle.path} is {bundle.precision}; make one with `audeep-edge quantize RUN "
                         "--precision edgetpu` and compile that")
    compiled = Path(compiled) if compiled is not None else bundle.path / DEFAULT_COMPILED
    try:
        data = compiled.read_bytes()
    except OSError as exc:
        raise ModelError(f"{compiled}: cannot read the compiled model ({exc.strerror}); in {bundle.path} run "
                         f"`edgetpu_compiler -s -o edgetpu {bundle.model_path.name}` first") from None
    if CUSTOM_OP not in data:
        raise ModelError(f"{compiled} has no edgetpu-custom-op: it is not compiled by edgetpu_compiler, or no op "
                         "mapped to the Edge TPU (see the compiler's log)")
    manifest = dict(bundle.manifest)
    target = bundle.path / COMPILED_FILE
    if compiled.resolve() != target.resolve():
        shutil.copyfile(compiled, target)
    if bundle.model_path.name != COMPILED_FILE:
        manifest["cpu_model_file"] = bundle.model_path.name
    manifest.update(model_file=COMPILED_FILE, sha256=sha256_of(target))
    _write_json(bundle.path / MANIFEST, manifest)
    return load_bundle(bundle.path)


def _write_json(path: Path, data: dict) -> None:
    """Replace ``path`` atomically: a half-written bundle.json would make the bundle unloadable."""
    partial = path.with_suffix(".json.partial")
    try:
        partial.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror}); is the bundle directory writable?") from None
