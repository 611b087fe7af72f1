"""How closely a converted model follows the Keras model it came from, on held-out windows."""

from __future__ import annotations

import numpy as np

from audeep_edge.bundle import INPUT_NAME


class TfliteSignature:
    """A .tflite's ``serving_default`` signature, float32 in and out.

    Quantised (int8/uint8) inputs and outputs are (de)quantised with the tensors' own scale and zero point.
    ``interpreter_class`` defaults to ai-edge-litert's (``tf.lite.Interpreter`` has the same interface).
    """

    def __init__(self, model: bytes, num_threads: int = 1, interpreter_class: type | None = None) -> None:
        if interpreter_class is None:
            from ai_edge_litert.interpreter import Interpreter as interpreter_class

        self.interpreter = interpreter_class(model_content=model, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.input = self.runner.get_input_details()[INPUT_NAME]
        self.outputs = self.runner.get_output_details()

    def __call__(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """One window [shape=(T, F)] -> outputs by name [shape=(1, ...)], float32."""
        x = window[None].astype(np.float32)
        scale, zero = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])
        raw = self.runner(**{INPUT_NAME: x})
        result = {}
        for name, value in raw.items():
            scale, zero = self.outputs[name]["quantization"]
            value = value.astype(np.float32)
            result[name] = (value - zero) * scale if self.outputs[name]["dtype"] != np.float32 else value
        return result

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Windows [shape=(N, T, F)] -> outputs by name [shape=(N, ...)]."""
        rows = [self(w) for w in windows]
        return {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of ``a`` and ``b`` [shape=(N, D)] -> (N,).

    Two all-zero rows (e.g. an untrained encoder on a silent window) agree: 1.
    """
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cosine = np.sum(a * b, axis=1) / np.maximum(norm_a * norm_b, 1e-12)
    return np.where((norm_a < 1e-6) & (norm_b < 1e-6), 1.0, cosine)


def parity(reference: dict[str, np.ndarray], converted: dict[str, np.ndarray],
           targets: np.ndarray | None = None) -> dict:
    """Compare outputs of the Keras model and the converted model on the same windows.

    Parameters
    ----------
    reference, converted : outputs by name, ``embedding`` [shape=(N, D)] and optionally ``probabilities``
        [shape=(N, C)].
    targets : true class indices [shape=(N,)], for accuracy (needs ``probabilities``).

    Returns
    -------
    ``{"windows", "embedding": {"cosine_mean", "cosine_min", "max_abs_error"}}`` plus, with probabilities,
    ``"classes": {"agreement", "max_abs_error"}`` and with targets ``"accuracy_float"``,
    ``"accuracy_quantized"``, ``"accuracy_delta_points"`` inside ``"classes"``.
    """
    ref, conv = reference["embedding"], converted["embedding"]
    cosine = cosine_rows(ref, conv)
    report = {"windows": int(ref.shape[0]),
              "embedding": {"cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
                            "max_abs_error": float(np.abs(ref - conv).max())}}
    if "probabilities" in reference and "probabilities" in converted:
        p_ref, p_conv = reference["probabilities"], converted["probabilities"]
        ref_class, conv_class = p_ref.argmax(axis=1), p_conv.argmax(axis=1)
        classes = {"agreement": float(np.mean(ref_class == conv_class)),
                   "max_abs_error": float(np.abs(p_ref - p_conv).max())}
        if targets is not None:
            classes["accuracy_float"] = float(np.mean(ref_class == targets))
            classes["accuracy_quantized"] = float(np.mean(conv_class == targets))
            classes["accuracy_delta_points"] = 100.0 * (classes["accuracy_quantized"] - classes["accuracy_float"])
        report["classes"] = classes
    return report
