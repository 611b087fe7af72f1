"""Writing a bundle directory: a Keras graph converted to the bundle's model with its parity report, staged next
to the output and swapped in whole.

``quantize`` (autoencoder runs), the codebook recipe (:mod:`.codebook_bundle`) and ``train`` write through here.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from audeep_edge.bundle import MANIFEST, MODEL_FILE
from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.progress import spinner
from audeep_edge.training.quantize import edgetpu, flatbuffer
from audeep_edge.training.quantize.convert import UNROLLED_PRECISIONS, convert_in_child
from audeep_edge.training.quantize.parity import TfliteSignature, parity

log = logging.getLogger(__name__)
PARITY_FILE = "parity.json"


def check_output(output: Path) -> None:
    """ConfigError unless ``output`` is a new directory, an empty one or a bundle (which is then replaced)."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; choose a new directory")
    if output.exists() and not (output / MANIFEST).is_file() and any(output.iterdir()):
        raise ConfigError(f"--output {output} exists and is not a bundle; choose a new directory")


@contextmanager
def staged_bundle(output: Path, prefix: str) -> Iterator[Path]:
    """An empty directory to write the bundle into, in a scratch directory ``<prefix>*`` next to ``output``
    (the staging directory's parent, free for work files); it replaces ``output`` when the block ends without
    an error, and the scratch directory goes either way."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=output.parent) as tmp:
        staging = Path(tmp) / "bundle"
        staging.mkdir()
        yield staging
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)


def finish_model(raw: bytes, precision: str) -> bytes:
    """Converter output -> the bundle's model: float islands of int8 graphs moved to int8 and one quantisation
    per shared weight matrix, UNPACK rewritten for edgetpu, then compacted.

    Raises
    ------
    ModelError : an edgetpu model the Edge TPU compiler would not take whole (see :class:`edgetpu.EdgeTpuCheck`).
    """
    if precision in UNROLLED_PRECISIONS:
        raw, moved = flatbuffer.requantize_float_islands(raw)
        raw, shared = flatbuffer.share_step_quantization(raw)
        log.debug("moved %d float ops to int8; %d tensors requantised to their step family's range", moved, shared)
    if precision == "edgetpu":
        raw, replaced = flatbuffer.unpack_to_slices(raw)
        log.debug("replaced %d UNPACK ops by STRIDED_SLICE", replaced)
        check = edgetpu.check_ops(raw)
        if not check.ready:
            raise ModelError(f"the edgetpu model is not one the Edge TPU compiler takes whole ({check.problems()}); "
                             "quantize --precision int8 runs this model on a CPU")
    return flatbuffer.compact(raw)


def convert_graph(model, precision: str, calibration: np.ndarray | None, work: Path) -> bytes:
    """Keras graph -> the bundle's .tflite bytes at ``precision`` (``work``: scratch directory)."""
    from audeep_edge.training.quantize.graph import export_saved_model

    saved = work / "saved_model"
    export_saved_model(model, saved)
    raw = convert_in_child(saved, precision, calibration if precision in UNROLLED_PRECISIONS else None)
    return finish_model(raw, precision)


def convert_and_write(reference, graph, staging: Path, *, precision: str, calibration: np.ndarray | None,
                      windows: np.ndarray, targets: np.ndarray | None, data: str | None) -> tuple[dict, int]:
    """Convert ``graph``, write it as the bundle's model into ``staging`` (from :func:`staged_bundle`), measure its
    parity with the Keras ``reference`` and write that report as ``parity.json``.

    Parameters
    ----------
    calibration : (M, T, F) windows that set the int8 ranges (unused at float precisions).
    windows : (N, T, F) parity windows; targets : (N,) their class indices, or None.
    data : where the parity windows come from, for the report.

    Returns
    -------
    the parity report and the embedding size D.
    """
    started = time.perf_counter()
    with spinner(f"converting to {precision}"):
        model = convert_graph(graph, precision, calibration, staging.parent)
    seconds = time.perf_counter() - started
    (staging / MODEL_FILE).write_bytes(model)
    with spinner(f"measuring parity on {len(windows)} windows"):
        expected = {k: np.asarray(v) for k, v in reference.predict(windows, verbose=0, batch_size=32).items()}
        converted = TfliteSignature(model).predict(windows)
    report = {"precision": precision, "model_bytes": len(model), "conversion_seconds": round(seconds, 1),
              "data": data, **parity(expected, converted, targets),
              "ops": dict(sorted(flatbuffer.op_counts(model).items())),
              "edgetpu": _edgetpu_report(model, staging, precision)}
    (staging / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report, int(expected["embedding"].shape[1])


def _edgetpu_report(model: bytes, bundle_dir: Path, precision: str) -> dict:
    """Static op check; for edgetpu also the compiler's result or the command to run elsewhere."""
    report = edgetpu.check_ops(model).to_dict()
    if precision != "edgetpu":
        return report
    model_path = bundle_dir / MODEL_FILE
    compiled = edgetpu.run_compiler(model_path, bundle_dir / "edgetpu")
    if compiled is None:
        report["compiler"] = None
        report["compile_command"] = edgetpu.compile_command(Path(MODEL_FILE), Path("edgetpu"))
    else:
        report["compiler"] = compiled
    return report
