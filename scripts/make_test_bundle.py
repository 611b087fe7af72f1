"""Write the tiny test bundles in tests/data/ (needs the [train] extra: TensorFlow + Keras).

    .venv/bin/python scripts/make_test_bundle.py

Writes ``tests/data/tiny.bundle/`` (float32, WHILE-loop GRUs), ``tests/data/tiny-int8.bundle/`` (the same
weights unrolled and fully int8-quantised, int8 input/output) and ``tests/data/tiny.keras`` (the float Keras
model, for the naive baseline of ``audeep-edge bench``). The int8 graph's tensor names are stripped to keep it
small; the runtime finds tensors through the ``serving_default`` signature only. The encoder is a 2 x 16 GRU whose final states are
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


def to_tflite(model, int8_windows: np.ndarray | None) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        spec = tf.TensorSpec([1, WINDOW_FRAMES, MEL_BANDS], tf.float32, name="spectrogram")
        model.export(tmp, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if int8_windows is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ({"spectrogram": w[None]} for w in int8_windows)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            converter._experimental_disable_per_channel = True  # per-tensor: 2x smaller, same accuracy (litert-facts)
        return converter.convert()


def strip_tensor_names(tflite: bytes) -> bytes:
    """Drop tensor names (88 KB of the unrolled int8 graph) but keep the signature, which maps by index."""
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


def main() -> None:
    import keras

    keras.utils.set_random_seed(SEED)
    model = build_model(unroll=False)
    model.save(DATA / "tiny.keras")
    write_bundle("tiny", "float32", to_tflite(model, None))
    unrolled = build_model(unroll=True)
    unrolled.set_weights(model.get_weights())
    write_bundle("tiny-int8", "int8", strip_tensor_names(to_tflite(unrolled, calibration_windows())))
    for path in [DATA / "tiny.keras", *sorted(DATA.glob("tiny*.bundle/*"))]:
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    sys.exit(main())
