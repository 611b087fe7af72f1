"""LiteRT interpreter wrapper: load a bundle's ``.tflite`` once, run one spectrogram window per call.

Interpreter packages are tried in order: ``ai-edge-litert`` (the light install), ``tflite-runtime`` (old
devices), then ``tf.lite`` (costs a TensorFlow import; warned about). Tensors are found through the
``serving_default`` signature, never by position, and their indices are resolved once at load time.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from audeep_edge.encoder.cpu import this_cpu_choice
from audeep_edge.encoder.native_stderr import native_stderr_filtered
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


#: Ops whose int8 weights XNNPACK packs together with the node's input and output requantisation.
PACKED_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


def shares_packed_weights(model_path: str | Path) -> bool:
    """Whether XNNPACK's weight cache may pack each weight matrix once for all the nodes that use it.

    Always for float-activation models (float32, float16, dynamic range). An int8 node's packing includes its
    input and output requantisation, and the cache tells packings apart by the weights only, so an int8 model
    qualifies when every node reading the same weights has the same input and output quantisation (what
    ``quantize`` writes; a per-step calibrated graph measured cosine 0.54 against the interpreter). Read with
    ai-edge-litert's schema; False when that is unavailable or the file is not a model.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return False
    try:
        model = schema.Model.GetRootAs(Path(model_path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        if graph.Tensors(graph.Inputs(0)).Type() == schema.TensorType.FLOAT32:
            return True
        packed = {getattr(schema.BuiltinOperator, name) for name in PACKED_WEIGHT_OPS}
        codes = {i for i in range(model.OperatorCodesLength())
                 if max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode()) in packed}
        seen: dict[tuple, tuple] = {}
        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for j in range(graph.OperatorsLength()):
                op = graph.Operators(j)
                if op.OpcodeIndex() not in codes:
                    continue
                weights = model.Buffers(graph.Tensors(op.Inputs(1)).Buffer()).DataAsNumpy()
                where = (weights.__array_interface__["data"][0], weights.size) if hasattr(weights, "size") else (g, j)
                bias = op.Inputs(2) if op.InputsLength() > 2 else -1
                sig = (_affine(graph.Tensors(op.Inputs(0))), _affine(graph.Tensors(op.Outputs(0))),
                       graph.Tensors(bias).Buffer() if bias >= 0 else -1)
                if seen.setdefault(where, sig) != sig:
                    return False
        return True
    except Exception:  # noqa: BLE001 - not a flatbuffer: the interpreter will say so
        return False


def _add_quantization(model_path: Path, details: list[dict]) -> None:
    """Add the classic interpreter's ``quantization`` (scale, zero point) to CompiledModel tensor details,
    read from the model's main subgraph."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(model_path.read_bytes(), 0).Subgraphs(0)
    for detail in details:
        scales, zero_points = _affine(graph.Tensors(detail["index"]))
        detail["quantization"] = (scales[0], zero_points[0]) if scales else (0.0, 0)


def _affine(tensor) -> tuple:
    q = tensor.Quantization()
    return (tuple(q.ScaleAsNumpy().tolist()) if q is not None and q.ScaleLength() else (),
            tuple(q.ZeroPointAsNumpy().tolist()) if q is not None and q.ZeroPointLength() else ())


def _compiled_model_class():
    """LiteRT's ``CompiledModel`` (ai-edge-litert >= 2), or None."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel
    except ImportError:
        return None
    return CompiledModel


class _InterpreterRunner:
    """The classic ``Interpreter``: any package, any delegate."""

    def __init__(self, backend: SimpleNamespace, model_path: Path, threads: int, delegates: list,
                 default_delegates: bool) -> None:
        kwargs = {"model_path": str(model_path), "num_threads": threads}
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if not default_delegates and backend.OpResolverType is not None:
            kwargs["experimental_op_resolver_type"] = backend.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._interpreter = backend.Interpreter(**kwargs)
        self._interpreter.allocate_tensors()
        runner = self._interpreter.get_signature_runner(SIGNATURE) \
            if SIGNATURE in self._interpreter.get_signature_list() else None
        self.inputs = runner.get_input_details() if runner else {}
        self.outputs = runner.get_output_details() if runner else {}

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._interpreter.set_tensor(self.inputs[INPUT_NAME]["index"], x)
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(detail["index"]) for name, detail in self.outputs.items()}


class _CompiledRunner:
    """LiteRT's ``CompiledModel`` on the CPU (XNNPACK) with an in-memory weight cache.

    The cache packs each weight tensor once, where the classic interpreter packs it once per node: an
    unrolled graph uses one set of recurrent weights at every time step (2x256 GRU, T=124: dynamic range
    3.2 ms per window vs 12.7 ms for the WHILE-loop graph; int8 3.5 ms vs 8.0 ms with per-node packing).
    Only for models that :func:`shares_packed_weights` accepts.
    """

    def __init__(self, compiled_model_class, model_path: Path, threads: int) -> None:
        import ai_edge_litert
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.environment import Environment, EnvironmentOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options

        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=threads, xnnpack_weight_cache_path=":memory"))
        with native_stderr_filtered():     # accelerators are set up lazily, up to the first run
            environment = Environment.create(options=EnvironmentOptions(
                runtime_path=os.path.dirname(os.path.abspath(ai_edge_litert.__file__))))
            self._model = compiled_model_class.from_file(str(model_path), environment=environment, options=options)
            signatures = self._model.get_signature_list()
            self.inputs = self._model.get_input_tensor_details(SIGNATURE) if SIGNATURE in signatures else {}
            self.outputs = self._model.get_output_tensor_details(SIGNATURE) if SIGNATURE in signatures else {}
            _add_quantization(model_path, [*self.inputs.values(), *self.outputs.values()])
            if INPUT_NAME in self.inputs:
                index = self._model.get_signature_index(SIGNATURE)
                self._in = self._model.create_input_buffers(index)
                self._out = self._model.create_output_buffers(index)
                self._index, self._names = index, list(signatures[SIGNATURE]["outputs"])
                self._sizes = {name: int(np.prod(self.outputs[name]["shape"])) for name in self._names}
                self.run(np.zeros(self.inputs[INPUT_NAME]["shape"], self.inputs[INPUT_NAME]["dtype"]))

    def __del__(self) -> None:
        try:
            with native_stderr_filtered():      # buffers, model and environment go, and log their teardown
                self.__dict__.clear()
        except Exception:  # noqa: BLE001 - interpreter shutdown; the exit hook filters what is left
            pass

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._in[0].write(x)
        self._model.run_by_index(self._index, self._in, self._out)
        return {name: buffer.read(self._sizes[name], self.outputs[name]["dtype"])
                for name, buffer in zip(self._names, self._out)}


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
    ai-edge-litert provides it (see :class:`_CompiledRunner`) and this CPU can load it (an arm64 CPU without
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
        compiled = _compiled_model_class() if backend.name == "ai-edge-litert" else None
        shareable = (compiled is not None and delegate in ("auto", "xnnpack") and this_cpu_choice()[1].compiled_model
                     and shares_packed_weights(self.model_path))
        if delegate == "auto":
            delegate = "xnnpack" if shareable or count_subgraphs(self.model_path) > 1 else "none"
        delegates, self.delegate = self._delegates(backend, delegate, require_delegate)
        try:
            if shareable:
                self._runner = _CompiledRunner(compiled, self.model_path, threads)
                self.backend += " CompiledModel"
            else:
                self._runner = _InterpreterRunner(backend, self.model_path, threads, delegates,
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
