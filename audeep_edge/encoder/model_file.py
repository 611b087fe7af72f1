"""What a ``.tflite`` file says, read from its flatbuffer without running it: subgraphs, whether XNNPACK may share
packed weights, and tensor quantisation."""

from __future__ import annotations

import struct
from pathlib import Path


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


def add_quantization(model_path: Path, details: list[dict]) -> None:
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
