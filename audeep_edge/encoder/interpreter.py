"""LiteRT interpreter wrapper: load a bundle's ``.tflite`` once, run one spectrogram window per call.

The runner (:mod:`audeep_edge.encoder.runners`) and the delegate are chosen at load time; tensor indices and
quantisation are resolved then too, through the ``serving_default`` signature.
"""

from __future__ import annotations

import ctypes
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from audeep_edge.encoder.cpu import this_cpu_choice
from audeep_edge.encoder.model_file import count_subgraphs, shares_packed_weights
from audeep_edge.encoder.runners import INPUT_NAME, SIGNATURE, CompiledRunner, InterpreterRunner, \
    compiled_model_class, interpreter_backend
from audeep_edge.errors import ModelError

log = logging.getLogger(__name__)

DELEGATES = ("auto", "none", "xnnpack", "edgetpu")
EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


@dataclass(frozen=True)
class _Tensor:
    """A signature tensor: index, dtype and affine quantisation (``quantized`` False for float tensors)."""

    index: int
    dtype: type
    scale: float
    zero_point: int
    quantized: bool
    low: int = 0
    high: int = 0


@dataclass(frozen=True)
class Encoded:
    """One window's model outputs: ``embedding`` [shape=(D,)] and ``probabilities`` [shape=(C,)] or None,
    both float32 (dequantised for integer models)."""

    embedding: np.ndarray
    probabilities: np.ndarray | None


class Encoder:
    """A loaded model that maps one (T, F) float32 window to its embedding (and class probabilities).

    Parameters
    ----------
    model_path : the ``.tflite`` file (a bundle's ``model_path``).
    threads : interpreter threads.
    delegate : ``none`` (plain CPU kernels, XNNPACK off), ``xnnpack`` (LiteRT's CPU delegate), ``edgetpu``
        (``libedgetpu`` through the delegate loader) or ``auto``: XNNPACK, except for an unrolled graph on the
        classic interpreter (an int8 graph whose time steps have their own quantisation, written before
        ``quantize`` shared it, or any unrolled graph where ``CompiledModel`` cannot run): its XNNPACK packs the
        weights once per step (2x256 GRU, T=124, a stream on x86: +36 MB peak RSS for 1.3-1.6x the int8/dynamic
        speed, +179 MB and no faster for float32), so there ``auto`` means ``none``.
    require_delegate : raise instead of falling back to the CPU when the delegate cannot be loaded.

    Models whose weights can be packed once (float activations, or int8 with one quantisation per weight
    matrix: :func:`shares_packed_weights`) run on LiteRT's ``CompiledModel`` with a weight cache when
    ai-edge-litert provides it (see :class:`CompiledRunner`) and this CPU can load it (an arm64 CPU without
    ARMv8.2 and crypto cannot: :mod:`audeep_edge.encoder.cpu`); everything else on the classic ``Interpreter``.

    Attributes
    ----------
    delegate : the delegate actually in use (``auto`` resolved; ``none`` after a fallback).
    backend : name and version of the interpreter package and the API that runs the model (``CompiledModel`` or
        ``Interpreter``).
    input_shape : (1, T, F).
    """

    def __init__(self, model_path: str | Path, *, threads: int = 1, delegate: str = "auto",
                 require_delegate: bool = False) -> None:
        if delegate not in DELEGATES:
            raise ModelError(f"--delegate must be one of {', '.join(DELEGATES)}, got {delegate!r}")
        self.model_path = Path(model_path)
        backend = interpreter_backend()
        self.backend = f"{backend.name} {backend.version}"
        compiled = compiled_model_class() if backend.name == "ai-edge-litert" else None
        shareable = (compiled is not None and delegate in ("auto", "xnnpack") and this_cpu_choice()[1].compiled_model
                     and shares_packed_weights(self.model_path))
        if delegate == "auto":
            delegate = "xnnpack" if shareable or count_subgraphs(self.model_path) > 1 else "none"
        delegates, self.delegate = self._delegates(backend, delegate, require_delegate)
        try:
            if shareable:
                self._runner = CompiledRunner(compiled, self.model_path, threads)
                self.backend += " CompiledModel"
            else:
                self._runner = InterpreterRunner(backend, self.model_path, threads, delegates,
                                                  default_delegates=self.delegate == "xnnpack")
                self.backend += " Interpreter"
        except (ValueError, RuntimeError) as exc:
            raise ModelError(self._load_failure(exc)) from None
        self._input, self._outputs, self.input_shape = self._resolve_signature()
        log.info("model %s on %s, %d thread(s), delegate %s", self.model_path.name, self.backend, threads,
                 self.delegate)

    def _delegates(self, backend: SimpleNamespace, wanted: str, required: bool) -> tuple[list, str]:
        if wanted != "edgetpu":
            return [], wanted
        library = EDGETPU_LIBRARY.get(platform.system(), EDGETPU_LIBRARY["Linux"])
        try:
            # dlopen first: the loader's Delegate object prints a traceback from __del__ when dlopen fails.
            ctypes.CDLL(library)
            return [backend.load_delegate(library)], "edgetpu"
        except (ValueError, OSError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            message = (f"--delegate edgetpu: cannot load {library} ({reason}); install the Edge TPU runtime "
                       "(libedgetpu1-std) and plug in the Coral device")
            if required:
                raise ModelError(message) from None
            log.warning("%s; running on the CPU instead", message)
            return [], "none"

    def _load_failure(self, exc: Exception) -> str:
        text = str(exc)
        if "edgetpu-custom-op" in text:
            return (f"{self.model_path} is compiled for the Edge TPU and cannot run on the CPU; use "
                    "--delegate edgetpu with a Coral device, or a cpu bundle (int8/float32)")
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"{self.model_path}: not a loadable TFLite model ({first}); re-copy or re-export the bundle"

    def _resolve_signature(self) -> tuple[_Tensor, dict[str, _Tensor], tuple[int, ...]]:
        inputs, outputs = self._runner.inputs, self._runner.outputs
        if INPUT_NAME not in inputs:
            raise ModelError(f"{self.model_path} has no '{SIGNATURE}' signature with an '{INPUT_NAME}' input; "
                             "re-export it with `audeep-edge quantize`")
        if "embedding" not in outputs:
            raise ModelError(f"{self.model_path} has no 'embedding' output; re-export it with `audeep-edge quantize`")
        shape = tuple(int(s) for s in inputs[INPUT_NAME]["shape"])
        return _tensor(inputs[INPUT_NAME]), {name: _tensor(detail) for name, detail in outputs.items()}, shape

    @property
    def has_probabilities(self) -> bool:
        return "probabilities" in self._outputs

    def __call__(self, window: np.ndarray) -> Encoded:
        """Run one window [shape=(T, F)] of features in [-1, 1]; return its float32 outputs."""
        x = np.asarray(window, dtype=np.float32).reshape(self.input_shape)
        spec = self._input
        if spec.quantized:
            x = np.clip(np.rint(x / spec.scale) + spec.zero_point, spec.low, spec.high).astype(spec.dtype)
        outputs = self._runner.run(x)
        probabilities = self._read(outputs, "probabilities") if self.has_probabilities else None
        return Encoded(embedding=self._read(outputs, "embedding"), probabilities=probabilities)

    def _read(self, outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
        spec = self._outputs[name]
        y = outputs[name].reshape(-1)
        if spec.quantized:
            return ((y.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
        return y.astype(np.float32, copy=False)


def _tensor(detail: dict) -> _Tensor:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = detail["dtype"]
    quantized = np.issubdtype(dtype, np.integer) and scale > 0
    limits = np.iinfo(dtype) if quantized else None
    return _Tensor(index=int(detail["index"]), dtype=dtype, scale=float(scale), zero_point=int(zero_point),
                   quantized=quantized, low=limits.min if limits else 0, high=limits.max if limits else 0)
