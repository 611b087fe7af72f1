"""SavedModel -> .tflite at one precision, run in a child process so that a converter crash is an error.

Full-integer calibration of a Keras RNN in a WHILE loop segfaults inside TensorFlow's calibrator
(tensorflow#75140, #62281, #87468); int8 and edgetpu therefore convert an unrolled graph. A segfault can
still happen on other graphs, and it would kill the whole CLI, so :func:`convert_in_child` runs the
converter in a child Python process and turns any crash into a one-line :class:`ModelError`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from audeep_edge.errors import ModelError

log = logging.getLogger(__name__)

#: Precisions converted from the unrolled graph (calibrated full-integer quantisation).
UNROLLED_PRECISIONS = ("int8", "edgetpu")


def convert_saved_model(saved_model_dir: str, precision: str, calibration: np.ndarray | None) -> bytes:
    """Convert in this process. ``calibration`` [shape=(N, T, F)] float32 is needed for int8 / edgetpu.

    float32: as trained; float16: float16 weights; dynamic: int8 weights, float activations; int8 and
    edgetpu: int8 weights, activations, input and output (no float QUANTIZE/DEQUANTIZE at the edges; the
    runtime (de)quantises with the tensors' scale and zero point). Per-channel weight scales are off for the
    integer precisions: the unrolled graph repeats them per time step and they gave no better agreement
    (docs/quantize.md). The converter may still leave a data-movement op in float; see
    :func:`~audeep_edge.training.quantize.flatbuffer.requantize_float_islands`.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if precision in UNROLLED_PRECISIONS:
        windows = np.asarray(calibration, dtype=np.float32)
        converter.representative_dataset = lambda: ({"spectrogram": w[None]} for w in windows)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = True
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


#: How the parent starts the child: ``CHILD_COMMAND + [work_dir]`` (a list, so tests can swap the child).
CHILD_COMMAND = [sys.executable, "-m", "audeep_edge.training.quantize.convert"]


def _child_main(work_dir: str) -> int:
    """Child process body. Reads ``job.json`` (and ``calibration.npy``) from ``work_dir``; writes
    ``model.tflite``, or the one-line description of a Python exception to ``error.txt``."""
    work = Path(work_dir)
    job = json.loads((work / "job.json").read_text())
    try:
        calibration = np.load(work / "calibration.npy") if job["calibration"] else None
        model = convert_saved_model(job["saved_model_dir"], job["precision"], calibration)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises ModelError
        lines = str(exc).strip().splitlines()
        (work / "error.txt").write_text(f"{type(exc).__name__}: {lines[-1] if lines else ''}")
        return 1
    (work / "model.tflite").write_bytes(model)
    return 0


def convert_in_child(saved_model_dir: Path, precision: str, calibration: np.ndarray | None) -> bytes:
    """:func:`convert_saved_model` in a child process; the converter's chatter goes to the debug log.

    Raises
    ------
    ModelError : the converter raised, or the child died (segfault, abort, out of memory).
    """
    with tempfile.TemporaryDirectory(prefix="audeep-convert-") as tmp:
        work = Path(tmp)
        if calibration is not None:
            np.save(work / "calibration.npy", np.asarray(calibration, dtype=np.float32))
        job = {"saved_model_dir": str(saved_model_dir), "precision": precision,
               "calibration": calibration is not None}
        (work / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        proc = subprocess.run([*CHILD_COMMAND, str(work)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env, check=False)
        log.debug("converter output:\n%s", proc.stdout.decode(errors="replace")[-20000:])
        model_path, error_path = work / "model.tflite", work / "error.txt"
        if proc.returncode == 0 and model_path.is_file():
            return model_path.read_bytes()
        if error_path.is_file():
            raise ModelError(f"TFLite conversion to {precision} failed: {error_path.read_text()}")
        if proc.returncode < 0:
            how = signal.Signals(-proc.returncode).name
        else:
            how = f"exit status {proc.returncode}"
        raise ModelError(f"the TFLite converter crashed ({how}) while converting to {precision}; "
                         "run with --log-file to keep its output, or try another --precision")


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
