"""TFLite flatbuffer surgery on converter output: shrink it, rewrite UNPACK for the Edge TPU, list its ops.

Uses the schema bindings shipped with ai-edge-litert (no TensorFlow import). An unrolled int8 RNN has one
tensor per gate per time step (≈5,000 for 2×256 GRU at T=124): the converter's tensor names then take as
many bytes as the int8 weights, and every tensor carries its own copy of identical quantisation parameters
and shapes. :func:`compact` strips the names (keeping the signature's), points constant-free tensors at the
empty sentinel buffer 0 and shares identical tables and vectors, as flatbuffers allows.
"""

from __future__ import annotations

from collections import Counter

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

_FILE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16  # the converter's own alignment of constant data; SIMD kernels may rely on it
OP_NAMES = {code: name for name, code in vars(fb.BuiltinOperator).items() if not name.startswith("_")}
TYPE_NAMES = {code: name for name, code in vars(fb.TensorType).items() if not name.startswith("_")}


class _SharingBuilder(flatbuffers.Builder):
    """A builder that writes each distinct numpy vector once and aligns byte buffers to 16."""

    def __init__(self, initial_size: int) -> None:
        super().__init__(initial_size)
        self._vectors: dict[tuple, int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 (flatbuffers' name)
        key = (x.dtype.str, x.tobytes())
        offset = self._vectors.get(key)
        if offset is None:
            alignment = _BUFFER_ALIGNMENT if x.dtype == np.uint8 else x.dtype.alignment
            self.StartVector(x.itemsize, x.size, alignment)
            payload = x.astype(x.dtype.newbyteorder("<"), copy=False).tobytes()
            self.head -= len(payload)
            self.Bytes[self.head:self.head + len(payload)] = payload
            self.vectorNumElems = x.size
            offset = self._vectors[key] = self.EndVector()
        return offset


_SHARED_CLASSES: dict[type, type] = {}


def _shared(obj: object) -> object:
    """A copy of a schema ``...T`` object whose ``Pack`` writes its table once per builder."""
    cls = type(obj)
    if cls not in _SHARED_CLASSES:
        def pack(self, builder, _pack=cls.Pack):
            cached = self.__dict__.get("_packed")
            if cached is None or cached[0] is not builder:
                cached = self.__dict__["_packed"] = (builder, _pack(self, builder))
            return cached[1]

        _SHARED_CLASSES[cls] = type(f"Shared{cls.__name__}", (cls,), {"Pack": pack})
    copy = _SHARED_CLASSES[cls].__new__(_SHARED_CLASSES[cls])
    copy.__dict__.update(vars(obj))
    return copy


def _content_key(obj: object) -> tuple:
    """Hashable value of a flat schema object (numpy fields as bytes); nested objects make it unshareable."""
    items = []
    for name, value in sorted(vars(obj).items()):
        if isinstance(value, np.ndarray):
            value = (value.dtype.str, value.tobytes())
        elif isinstance(value, list) or hasattr(value, "__dict__"):
            return (id(obj),)
        items.append((name, value))
    return (type(obj).__name__, tuple(items))


def read_model(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))


def write_model(model: fb.ModelT) -> bytes:
    builder = _SharingBuilder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def compact(data: bytes) -> bytes:
    """The same model with non-signature tensor names removed and identical parts stored once.

    Inference results are bit-identical (only metadata and the flatbuffer layout change).
    """
    model = read_model(data)
    keep = {(sig.subgraphIndex, t.tensorIndex) for sig in model.signatureDefs or []
            for t in (sig.inputs or []) + (sig.outputs or [])}
    used = {0}
    for g, subgraph in enumerate(model.subgraphs):
        shared: dict[tuple, object] = {}
        for i, tensor in enumerate(subgraph.tensors):
            if (g, i) not in keep:
                tensor.name = None
            buffer = model.buffers[tensor.buffer]
            if (buffer.data is None or len(buffer.data) == 0) and not buffer.offset:
                tensor.buffer = 0
            used.add(tensor.buffer)
            if tensor.quantization is not None:
                key = _content_key(tensor.quantization)
                tensor.quantization = shared.setdefault(key, _shared(tensor.quantization))
        for op in subgraph.operators:
            if op.builtinOptions is not None:
                key = _content_key(op.builtinOptions)
                op.builtinOptions = shared.setdefault(key, _shared(op.builtinOptions))
    used.update(m.buffer for m in model.metadata or [])
    order = sorted(used)
    new_index = {old: new for new, old in enumerate(order)}
    model.buffers = [model.buffers[old] for old in order]
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index[tensor.buffer]
    for m in model.metadata or []:
        m.buffer = new_index[m.buffer]
    return write_model(model)


def _opcode(model: fb.ModelT, builtin: int, version: int) -> int:
    """Index of the operator code for ``builtin``, added if the model has none."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    model.operatorCodes.append(fb.OperatorCodeT(deprecatedBuiltinCode=min(builtin, 127), version=version,
                                                builtinCode=builtin))
    return len(model.operatorCodes) - 1


def _constant(model: fb.ModelT, subgraph: fb.SubGraphT, values: list[int]) -> int:
    """Add an int32 constant vector tensor; return its index."""
    model.buffers.append(fb.BufferT(data=np.asarray(values, "<i4").view(np.uint8)))
    subgraph.tensors.append(fb.TensorT(shape=np.asarray([len(values)], np.int32), type=fb.TensorType.INT32,
                                       buffer=len(model.buffers) - 1, hasRank=True))
    return len(subgraph.tensors) - 1


def unpack_to_slices(data: bytes) -> tuple[bytes, int]:
    """Replace every UNPACK (not an Edge TPU op) by one STRIDED_SLICE per output (stride 1, shrink axis).

    Returns the new model and the number of UNPACK ops replaced.
    """
    model = read_model(data)
    replaced = 0
    for subgraph in model.subgraphs:
        operators = []
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) != fb.BuiltinOperator.UNPACK:
                operators.append(op)
                continue
            source = int(op.inputs[0])
            shape = [int(n) for n in subgraph.tensors[source].shape]
            axis = op.builtinOptions.axis % len(shape)
            slice_code = _opcode(model, fb.BuiltinOperator.STRIDED_SLICE, version=2)
            strides = _constant(model, subgraph, [1] * len(shape))
            for step, output in enumerate(op.outputs):
                begin = [0] * len(shape)
                end = list(shape)
                begin[axis], end[axis] = step, step + 1
                operators.append(fb.OperatorT(
                    opcodeIndex=slice_code,
                    inputs=np.asarray([source, _constant(model, subgraph, begin),
                                       _constant(model, subgraph, end), strides], np.int32),
                    outputs=np.asarray([output], np.int32),
                    builtinOptionsType=fb.BuiltinOptions.StridedSliceOptions,
                    builtinOptions=fb.StridedSliceOptionsT(shrinkAxisMask=1 << axis)))
            replaced += 1
        subgraph.operators = operators
    return (write_model(model) if replaced else data), replaced


def op_name(model: fb.ModelT, op: fb.OperatorT) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == fb.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.customCode or b'').decode(errors='replace')}"
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def op_counts(data: bytes) -> Counter:
    """How many times each operator appears, over all subgraphs."""
    model = read_model(data)
    return Counter(op_name(model, op) for subgraph in model.subgraphs for op in subgraph.operators)
