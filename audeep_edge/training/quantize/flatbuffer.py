"""TFLite flatbuffer surgery on converter output: shrink it, share the int8 time steps' quantisation, rewrite
UNPACK for the Edge TPU, give it a new linear classifier head, list its ops.

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

from audeep_edge.encoder.model_file import PACKED_WEIGHT_OPS

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
            if not _is_constant(model, tensor):
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
            if _builtin(model, op) != fb.BuiltinOperator.UNPACK:
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


#: Ops whose int8 kernels only move data (output scale = input scale), so they can run on int8 directly.
_DATA_MOVEMENT_OPS = frozenset({fb.BuiltinOperator.SPLIT, fb.BuiltinOperator.RESHAPE, fb.BuiltinOperator.SLICE,
                                fb.BuiltinOperator.STRIDED_SLICE, fb.BuiltinOperator.SQUEEZE,
                                fb.BuiltinOperator.EXPAND_DIMS, fb.BuiltinOperator.UNPACK,
                                fb.BuiltinOperator.TRANSPOSE})


def _builtin(model: fb.ModelT, op: fb.OperatorT) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def requantize_float_islands(data: bytes) -> tuple[bytes, int]:
    """Run data-movement ops left in float inside an int8 graph on int8: ``DEQUANTIZE -> SPLIT -> QUANTIZE``
    becomes ``SPLIT -> QUANTIZE`` (an int8 requantisation).

    The quantiser leaves such islands where an op has a dead output: in an unrolled GRU the reset gate of
    the first step multiplies the all-zero initial state and is folded away (LSTM: the forget gate). A float
    op stops the Edge TPU compiler and costs two conversions on a CPU. Returns the model and the number of
    ops moved to int8.
    """
    model = read_model(data)
    moved = 0
    best_code: dict[int, int] = {}
    for index, code in enumerate(model.operatorCodes):
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin not in best_code or code.version > model.operatorCodes[best_code[builtin]].version:
            best_code[builtin] = index
    for subgraph in model.subgraphs:
        tensors, ops = subgraph.tensors, subgraph.operators
        producer = {int(t): op for op in ops for t in op.outputs}
        consumers: dict[int, list] = {}
        for op in ops:
            for t in op.inputs:
                consumers.setdefault(int(t), []).append(op)
        graph_outputs = {int(t) for t in subgraph.outputs}
        dropped = set()
        for op in ops:
            if _builtin(model, op) not in _DATA_MOVEMENT_OPS:
                continue
            floats = [(pos, int(t)) for pos, t in enumerate(op.inputs)
                      if t >= 0 and tensors[t].type == fb.TensorType.FLOAT32 and not _is_constant(model, tensors[t])]
            if len(floats) != 1 or int(floats[0][1]) not in producer:
                continue
            position, float_input = floats[0]
            dequantize = producer[float_input]
            quantized = int(dequantize.inputs[0])
            outputs = [int(t) for t in op.outputs]
            if (_builtin(model, dequantize) != fb.BuiltinOperator.DEQUANTIZE
                    or tensors[quantized].type != fb.TensorType.INT8
                    or any(t in graph_outputs for t in outputs)
                    or not all(_builtin(model, c) == fb.BuiltinOperator.QUANTIZE
                               for t in outputs for c in consumers.get(t, []))):
                continue
            op.inputs = np.array(op.inputs, np.int32)
            op.inputs[position] = quantized
            op.opcodeIndex = best_code[_builtin(model, op)]
            for t in outputs:
                tensors[t].type = fb.TensorType.INT8
                tensors[t].quantization = tensors[quantized].quantization
            consumers[float_input].remove(op)
            if not consumers[float_input] and float_input not in graph_outputs:
                dropped.add(id(dequantize))
            moved += 1
        subgraph.operators = [op for op in ops if id(op) not in dropped]
    return (write_model(model) if moved else data), moved


_PACKED_WEIGHT_OPS = frozenset(getattr(fb.BuiltinOperator, name) for name in PACKED_WEIGHT_OPS)
#: Ops whose int8 output must keep the quantisation of their inputs.
_SAME_SCALE_OPS = _DATA_MOVEMENT_OPS | {fb.BuiltinOperator.SPLIT_V, fb.BuiltinOperator.CONCATENATION,
                                        fb.BuiltinOperator.PACK, fb.BuiltinOperator.GATHER}
#: Ops whose int8 output quantisation is fixed by the kernel (σ: 1/256, tanh: 1/128, softmax: 1/256).
_FIXED_OUTPUT_OPS = frozenset({fb.BuiltinOperator.LOGISTIC, fb.BuiltinOperator.TANH, fb.BuiltinOperator.SOFTMAX})


def _affine(tensor: fb.TensorT) -> tuple[float, int] | None:
    q = tensor.quantization
    if tensor.type != fb.TensorType.INT8 or q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def share_step_quantization(data: bytes) -> tuple[bytes, int]:
    """Give every node that uses the same int8 weights the same input and output quantisation.

    Calibration gives each time step of an unrolled RNN its own activation ranges, so XNNPACK packs the
    recurrent weights once per step (the requantisation is packed with them): 123 copies per matrix, read
    from memory at every window. Here the tensors that must agree (the inputs of all nodes sharing a weight
    matrix, their outputs, and whatever data-movement ops tie to them) get the union of their ranges; the
    kernels requantise to it, and a weight cache can then hold one packing per matrix. Nodes with a bias
    (int32 at the input's scale) and groups holding a fixed-range tensor (σ, tanh, graph input/output) are
    left alone. Returns the model and the number of tensors requantised.
    """
    model = read_model(data)
    changed = 0
    for subgraph in model.subgraphs:
        tensors = subgraph.tensors
        parent = list(range(len(tensors)))

        def root(t: int) -> int:
            while parent[t] != t:
                parent[t] = parent[parent[t]]
                t = parent[t]
            return t

        def join(members: list[int]) -> None:
            for t in members[1:]:
                parent[root(t)] = root(members[0])

        fixed = {int(t) for t in subgraph.inputs} | {int(t) for t in subgraph.outputs}
        families: dict[tuple, list[fb.OperatorT]] = {}
        for op in subgraph.operators:
            builtin = _builtin(model, op)
            if builtin in _PACKED_WEIGHT_OPS:
                families.setdefault(_weights_key(model, subgraph, op), []).append(op)
            elif builtin in _SAME_SCALE_OPS:
                join([int(t) for t in [*op.inputs, *op.outputs] if t >= 0 and not _is_constant(model, tensors[t])])
            if builtin in _FIXED_OUTPUT_OPS:
                fixed.update(int(t) for t in op.outputs)
        for (_, _, has_bias), ops in families.items():
            if len(ops) > 1 and not has_bias:
                join([int(op.inputs[0]) for op in ops])
                join([int(op.outputs[0]) for op in ops])
        groups: dict[int, list[int]] = {}
        for t, tensor in enumerate(tensors):
            if _affine(tensor) is not None and not _is_constant(model, tensor):
                groups.setdefault(root(t), []).append(t)
        for members in groups.values():
            params = {_affine(tensors[t]) for t in members}
            if len(params) < 2 or fixed.intersection(members):
                continue
            low = min(0.0, *(scale * (-128 - zero) for scale, zero in params))
            high = max(0.0, *(scale * (127 - zero) for scale, zero in params))
            scale = (high - low) / 255.0
            shared = fb.QuantizationParametersT()
            shared.scale = np.asarray([scale], np.float32)
            shared.zeroPoint = np.asarray([int(np.clip(round(-128 - low / scale), -128, 127))], np.int64)
            for t in members:
                tensors[t].quantization = shared
            changed += len(members)
    return (write_model(model) if changed else data), changed


def _weights_key(model: fb.ModelT, subgraph: fb.SubGraphT, op: fb.OperatorT) -> tuple:
    """Nodes with one key can share a packing: the same weight bytes and quantisation; and whether they have a
    bias (those are left alone)."""
    weights = subgraph.tensors[op.inputs[1]]
    bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
    data = model.buffers[weights.buffer].data
    return (bytes(data) if data is not None else weights.buffer, _affine(weights), bias >= 0)


def _is_constant(model: fb.ModelT, tensor: fb.TensorT) -> bool:
    buffer = model.buffers[tensor.buffer]
    return (buffer.data is not None and len(buffer.data) > 0) or bool(buffer.offset)


def op_name(model: fb.ModelT, op: fb.OperatorT) -> str:
    builtin = _builtin(model, op)
    if builtin == fb.BuiltinOperator.CUSTOM:
        custom = model.operatorCodes[op.opcodeIndex].customCode or b""
        return f"CUSTOM:{custom.decode(errors='replace')}"
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def op_counts(data: bytes) -> Counter:
    """How many times each operator appears, over all subgraphs."""
    model = read_model(data)
    return Counter(op_name(model, op) for subgraph in model.subgraphs for op in subgraph.operators)


SIGNATURE_KEY = b"serving_default"


def attach_linear_head(data: bytes, weights: np.ndarray, bias: np.ndarray) -> bytes:
    """The model with ``probabilities = softmax(embedding · weightsᵀ + bias)`` as its only classifier head.

    Ops that only served an existing ``probabilities`` output are removed with their tensors and weights;
    the encoder is untouched (its outputs are bit-identical). An int8 embedding is dequantised first, so the
    head runs in float32 on any model. No TensorFlow: the graph is edited with LiteRT's schema bindings.

    Parameters
    ----------
    weights : (C, D) float, the head's weights on the raw ``embedding`` (D values).
    bias : (C,) float.

    Raises
    ------
    ValueError : no ``serving_default`` signature with an ``embedding`` output, or D does not match.
    """
    model = read_model(data)
    signature = next((s for s in model.signatureDefs or [] if s.signatureKey == SIGNATURE_KEY), None)
    outputs = {t.name: t for t in (signature.outputs or [])} if signature is not None else {}
    if b"embedding" not in outputs:
        raise ValueError("the model has no serving_default signature with an 'embedding' output")
    subgraph = model.subgraphs[signature.subgraphIndex]
    embedding = int(outputs[b"embedding"].tensorIndex)
    weights, bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
    size = int(np.prod(subgraph.tensors[embedding].shape))
    if weights.ndim != 2 or weights.shape[1] != size or bias.shape != (weights.shape[0],):
        raise ValueError(f"head weights {weights.shape} and bias {bias.shape} do not fit a {size}-d embedding")
    subgraph.operators = _ops_computing(subgraph, [embedding])
    x = embedding
    if subgraph.tensors[embedding].type != fb.TensorType.FLOAT32:
        x = _add_tensor(subgraph, [1, size])
        subgraph.operators.append(fb.OperatorT(opcodeIndex=_opcode(model, fb.BuiltinOperator.DEQUANTIZE, 2),
                                               inputs=np.asarray([embedding], np.int32),
                                               outputs=np.asarray([x], np.int32)))
    classes = weights.shape[0]
    logits, probabilities = _add_tensor(subgraph, [1, classes]), _add_tensor(subgraph, [1, classes], b"probabilities")
    subgraph.operators += [
        fb.OperatorT(opcodeIndex=_opcode(model, fb.BuiltinOperator.FULLY_CONNECTED, 1),
                     inputs=np.asarray([x, _add_constant(model, subgraph, weights),
                                        _add_constant(model, subgraph, bias)], np.int32),
                     outputs=np.asarray([logits], np.int32),
                     builtinOptionsType=fb.BuiltinOptions.FullyConnectedOptions,
                     builtinOptions=fb.FullyConnectedOptionsT()),
        fb.OperatorT(opcodeIndex=_opcode(model, fb.BuiltinOperator.SOFTMAX, 1),
                     inputs=np.asarray([logits], np.int32), outputs=np.asarray([probabilities], np.int32),
                     builtinOptionsType=fb.BuiltinOptions.SoftmaxOptions, builtinOptions=fb.SoftmaxOptionsT(beta=1.0))]
    subgraph.outputs = np.asarray([embedding, probabilities], np.int32)
    signature.outputs = [outputs[b"embedding"], fb.TensorMapT()]
    signature.outputs[1].name, signature.outputs[1].tensorIndex = b"probabilities", probabilities
    _drop_unused_tensors(subgraph, [s for s in model.signatureDefs if s.subgraphIndex == signature.subgraphIndex])
    return compact(write_model(model))


def _ops_computing(subgraph: fb.SubGraphT, targets: list[int]) -> list[fb.OperatorT]:
    """The subgraph's operators that ``targets`` depend on, in their original order."""
    producer = {int(t): op for op in subgraph.operators for t in op.outputs}
    needed, pending = set(), list(targets)
    while pending:
        op = producer.get(pending.pop())
        if op is None or id(op) in needed:
            continue
        needed.add(id(op))
        pending += [int(t) for t in op.inputs if t >= 0]
    return [op for op in subgraph.operators if id(op) in needed]


def _add_tensor(subgraph: fb.SubGraphT, shape: list[int], name: bytes | None = None) -> int:
    """Add a float32 activation tensor; return its index."""
    subgraph.tensors.append(fb.TensorT(shape=np.asarray(shape, np.int32), type=fb.TensorType.FLOAT32, name=name,
                                       hasRank=True))
    return len(subgraph.tensors) - 1


def _add_constant(model: fb.ModelT, subgraph: fb.SubGraphT, values: np.ndarray) -> int:
    """Add a float32 constant tensor holding ``values``; return its index."""
    values = np.ascontiguousarray(values, dtype="<f4")
    model.buffers.append(fb.BufferT(data=values.reshape(-1).view(np.uint8)))
    subgraph.tensors.append(fb.TensorT(shape=np.asarray(values.shape, np.int32), type=fb.TensorType.FLOAT32,
                                       buffer=len(model.buffers) - 1, hasRank=True))
    return len(subgraph.tensors) - 1


def _drop_unused_tensors(subgraph: fb.SubGraphT, signatures: list) -> None:
    """Remove tensors no operator, graph input or graph output refers to; renumber the references."""
    def references(op):
        return [op.inputs, op.outputs, op.intermediates]

    used = {int(t) for t in [*subgraph.inputs, *subgraph.outputs]}
    for op in subgraph.operators:
        used.update(int(t) for refs in references(op) if refs is not None for t in refs if t >= 0)
    new_index = {old: new for new, old in enumerate(sorted(used))}

    def renumber(refs):
        return None if refs is None else np.asarray([new_index[int(t)] if t >= 0 else -1 for t in refs], np.int32)

    subgraph.tensors = [subgraph.tensors[old] for old in sorted(used)]
    for op in subgraph.operators:
        op.inputs, op.outputs, op.intermediates = (renumber(refs) for refs in references(op))
    subgraph.inputs, subgraph.outputs = renumber(subgraph.inputs), renumber(subgraph.outputs)
    for signature in signatures:
        for entry in (signature.inputs or []) + (signature.outputs or []):
            entry.tensorIndex = new_index[int(entry.tensorIndex)]
