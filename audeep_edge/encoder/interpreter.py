"""LiteRT interpreter wrapper: load a bundle's ``.tflite`` once, run one spectrogram window per call.

Interpreter packages are tried in order: ``ai-edge-litert`` (the light install), ``tflite-runtime`` (old
devices), then ``tf.lite`` (costs a TensorFlow import; warned about). Tensors are found through the
``serving_default`` signature, never by position, and their indices are resolved once at load time.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from audeep_edge.errors import ModelError

log = logging.getLogger(__name__)

DELEGATES = ("auto", "none", "xnnpack", "edgetpu")
EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
SIGNATURE = "serving_default"
INPUT_NAME = "spectrogram"


def interpreter_backend() -> SimpleNamespace:
    """The first importable interpreter package.

    Returns
    -------
    namespace with ``name``, ``version``, ``Interpreter``, ``load_delegate`` and ``OpResolverType`` (None when
    the package cannot switch off the default XNNPACK delegate).

    Raises
    ------
    ModelError : none of ai-edge-litert, tflite-runtime, tensorflow is installed.
    """
    for name, module_name in (("ai-edge-litert", "ai_edge_litert.interpreter"),
                              ("tflite-runtime", "tflite_runtime.interpreter")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return SimpleNamespace(name=name, version=_version(name), Interpreter=module.Interpreter,
                               load_delegate=module.load_delegate,
                               OpResolverType=getattr(module, "OpResolverType", None))
    try:
        import tensorflow as tf
    except ImportError:
        raise ModelError("no TFLite interpreter installed; run `pip install ai-edge-litert`") from None
    log.warning("ai-edge-litert is not installed: using tf.lite from TensorFlow (slow start-up, ~500 MB RAM); "
                "run `pip install ai-edge-litert`")
    return SimpleNamespace(name="tensorflow", version=tf.__version__, Interpreter=tf.lite.Interpreter,
                           load_delegate=tf.lite.experimental.load_delegate,
                           OpResolverType=tf.lite.experimental.OpResolverType)


def count_subgraphs(model_path: str | Path) -> int:
    """Subgraphs in a ``.tflite`` file, read from its flatbuffer header (no interpreter needed).

    A model with recurrent layers kept as WHILE loops has several (the loop body and condition are
    subgraphs); an unrolled one has exactly one. Layout (TFLite schema v3): the file starts with the offset
    of the root ``Model`` table; the table starts with the signed offset back to its vtable; vtable entry 2
    (after the vtable and table sizes) is field 2, ``subgraphs``, a vector whose length precedes its items.
    """
    data = Path(model_path).read_bytes()
    try:
        root = struct.unpack_from("<I", data, 0)[0]
        vtable = root - struct.unpack_from("<i", data, root)[0]
        vtable_size = struct.unpack_from("<H", data, vtable)[0]
        field = struct.unpack_from("<H", data, vtable + 8)[0] if vtable_size > 8 else 0
        if field == 0:
            return 0
        vector = root + field + struct.unpack_from("<I", data, root + field)[0]
        return struct.unpack_from("<I", data, vector)[0]
    except struct.error:
        return 0  # not a flatbuffer: the interpreter will say so


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


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
    delegate : ``none`` (plain CPU kernels, XNNPACK off), ``xnnpack`` (LiteRT's default CPU delegate),
        ``edgetpu`` (``libedgetpu`` through the delegate loader) or ``auto``: xnnpack for WHILE-loop graphs,
        none for unrolled ones, where XNNPACK packs the weights once per time step (int8 2x256 GRU, T=124:
        +92 MB RSS for a 2.5x faster invoke).
    require_delegate : raise instead of falling back to the CPU when the delegate cannot be loaded.

    Attributes
    ----------
    delegate : the delegate actually in use (``auto`` resolved; ``none`` after a fallback).
    backend : name and version of the interpreter package.
    input_shape : (1, T, F).
    """

    def __init__(self, model_path: str | Path, *, threads: int = 1, delegate: str = "auto",
                 require_delegate: bool = False) -> None:
        if delegate not in DELEGATES:
            raise ModelError(f"--delegate must be one of {', '.join(DELEGATES)}, got {delegate!r}")
        self.model_path = Path(model_path)
        if delegate == "auto":
            delegate = "xnnpack" if count_subgraphs(self.model_path) > 1 else "none"
        backend = interpreter_backend()
        self.backend = f"{backend.name} {backend.version}"
        delegates, self.delegate = self._delegates(backend, delegate, require_delegate)
        kwargs = {"model_path": str(self.model_path), "num_threads": threads}
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if delegate != "xnnpack" and backend.OpResolverType is not None:
            kwargs["experimental_op_resolver_type"] = backend.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interpreter = backend.Interpreter(**kwargs)
            self._interpreter.allocate_tensors()
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
        signatures = self._interpreter.get_signature_list()
        if SIGNATURE not in signatures or INPUT_NAME not in signatures[SIGNATURE]["inputs"]:
            raise ModelError(f"{self.model_path} has no '{SIGNATURE}' signature with an '{INPUT_NAME}' input; "
                             "re-export it with `audeep-edge quantize`")
        runner = self._interpreter.get_signature_runner(SIGNATURE)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
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
        self._interpreter.set_tensor(spec.index, x)
        self._interpreter.invoke()
        embedding = self._read("embedding")
        return Encoded(embedding=embedding, probabilities=self._read("probabilities") if self.has_probabilities
                       else None)

    def _read(self, name: str) -> np.ndarray:
        spec = self._outputs[name]
        y = self._interpreter.get_tensor(spec.index).reshape(-1)
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
