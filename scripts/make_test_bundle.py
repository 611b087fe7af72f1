"""Write the tiny test bundles in tests/data/ (needs the [train] extra: TensorFlow + Keras).

    .venv/bin/python scripts/make_test_bundle.py

    .venv/bin/python scripts/make_test_bundle.py tiny-dynamic.bundle   # only the outputs named

Writes ``tests/data/tiny.bundle/`` (float32, WHILE-loop GRUs), ``tests/data/tiny-int8.bundle/`` (the same
weights unrolled and fully int8-quantised, int8 input/output), ``tests/data/tiny-dynamic.bundle/`` (the same
weights unrolled, dynamic-range: int8 weights where the converter quantises them, float activations, input and
output) and ``tests/data/tiny.keras`` (the float Keras model, for the naive baseline of ``audeep-edge bench``).
The unrolled graphs' tensor names are stripped to keep them small; the runtime finds tensors through the
``serving_default`` signature only. The encoder is a 2 x 16 GRU whose final states are
concatenated into a 32-d embedding, plus a softmax head over the three esc_mini classes; weights are random
with a fixed seed, so the bundles only exercise the runtime, they classify nothing. Front end: 16 kHz,
80 ms windows with 40 ms overlap, 32 mel bands, -60 dB clip, 24 frames (1 s) per window, 0.4 s hop.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
LABELS = ["Dog bark", "Rain", "Rooster"]
FS, WINDOW_FRAMES, MEL_BANDS, UNITS, SEED = 16000, 24, 32, 16, 7


def frontend():
    from audeep_edge.features import FrontendConfig

    return FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=MEL_BANDS, clip_below=-60.0,
                          sample_rate=FS)


def build_model(unroll: bool):
    """(1, T, F) ``spectrogram`` -> {``embedding`` (1, 2·UNITS), ``probabilities`` (1, 3)}."""
    import keras

    inp = keras.Input((WINDOW_FRAMES, MEL_BANDS), batch_size=1, name="spectrogram")
    seq, state1 = keras.layers.GRU(UNITS, return_sequences=True, return_state=True, unroll=unroll)(inp)
    _, state2 = keras.layers.GRU(UNITS, return_state=True, unroll=unroll)(seq)
    embedding = keras.layers.Concatenate(name="embedding")([state1, state2])
    probabilities = keras.layers.Dense(len(LABELS), activation="softmax", name="probabilities")(embedding)
    return keras.Model(inp, {"embedding": embedding, "probabilities": probabilities})


def calibration_windows() -> np.ndarray:
    """Real feature windows from the committed ESC-10 clips (for int8 calibration) [shape=(N, T, F)]."""
    from audeep_edge.audio import read_audio
    from audeep_edge.features import extract

    cfg, windows = frontend(), []
    for path in sorted((DATA / "esc_mini").rglob("*.ogg")):
        samples, fs = read_audio(path)
        clip = extract(samples, fs, cfg).chunks[0]
        for start in range(0, clip.shape[0] - WINDOW_FRAMES + 1, WINDOW_FRAMES):
            windows.append(clip[start:start + WINDOW_FRAMES])
    return np.stack(windows)


def to_tflite(model, precision: str, calibration: np.ndarray | None = None) -> bytes:
    """``model`` as a .tflite at ``precision`` (float32, dynamic, or int8 calibrated on ``calibration``)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        spec = tf.TensorSpec([1, WINDOW_FRAMES, MEL_BANDS], tf.float32, name="spectrogram")
        model.export(tmp, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if precision != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "int8":
            converter.representative_dataset = lambda: ({"spectrogram": w[None]} for w in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            converter._experimental_disable_per_channel = True  # per-tensor: 2x smaller, same accuracy
        return converter.convert()


def strip_tensor_names(tflite: bytes) -> bytes:
    """Drop tensor names (88 KB of an unrolled graph) but keep the signature, which maps by index."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def write_bundle(name: str, precision: str, tflite: bytes) -> Path:
    from audeep_edge.bundle import write_manifest

    cfg = frontend()
    directory = DATA / f"{name}.bundle"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    (directory / "model.tflite").write_bytes(tflite)
    write_manifest(directory, name=name, precision=precision, frontend=cfg, geometry=cfg.geometry(FS),
                   window_frames=WINDOW_FRAMES, embedding_size=2 * UNITS, labels=LABELS,
                   input_dtype="int8" if precision == "int8" else "float32", hop_seconds=0.4,
                   training={"dataset": "none (random weights, seed 7)", "run": "scripts/make_test_bundle.py"})
    return directory


OUTPUTS = ("tiny.keras", "tiny.bundle", "tiny-int8.bundle", "tiny-dynamic.bundle")


def main(names: list[str]) -> int:
    import keras

    unknown = sorted(set(names) - set(OUTPUTS))
    if unknown:
        print(f"error: unknown output(s) {', '.join(unknown)}; choose from {', '.join(OUTPUTS)}", file=sys.stderr)
        return 2
    wanted = set(names or OUTPUTS)
    keras.utils.set_random_seed(SEED)
    model = build_model(unroll=False)
    unrolled = build_model(unroll=True)
    unrolled.set_weights(model.get_weights())
    if "tiny.keras" in wanted:
        model.save(DATA / "tiny.keras")
    if "tiny.bundle" in wanted:
        write_bundle("tiny", "float32", to_tflite(model, "float32"))
    if "tiny-int8.bundle" in wanted:
        write_bundle("tiny-int8", "int8", strip_tensor_names(to_tflite(unrolled, "int8", calibration_windows())))
    if "tiny-dynamic.bundle" in wanted:
        write_bundle("tiny-dynamic", "dynamic", strip_tensor_names(to_tflite(unrolled, "dynamic")))
    for name in sorted(wanted):
        for path in sorted((DATA / name).glob("*")) if name.endswith(".bundle") else [DATA / name]:
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
