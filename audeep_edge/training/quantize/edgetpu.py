"""Will the Coral Edge TPU compiler accept this model? An op-table check, and the compiler when installed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from audeep_edge.training.quantize.flatbuffer import TYPE_NAMES, op_name, read_model

#: Operations the Edge TPU compiler can map, from the "Supported operations" table of
#: https://coral.ai/docs/edgetpu/models-intro/#supported-operations (compiler 16, runtime 14+). Several
#: carry limits the table states and this check does not (e.g. STRIDED_SLICE: strides of 1 only;
#: SOFTMAX: 1-D input of at most 16,000 elements; FULLY_CONNECTED: default weights format only).
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD",
    "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
#: Tensor types an Edge TPU op may touch: 8-bit data plus int32 biases and shape/index constants.
_TPU_TYPES = frozenset({"INT8", "UINT8", "INT32"})


def compile_command(model_path: Path, out_dir: Path) -> str:
    """The compiler call to run on a machine that has ``edgetpu_compiler`` (x86-64 Debian/Ubuntu)."""
    return shlex.join(_compile_args(model_path, out_dir))


def _compile_args(model_path: Path, out_dir: Path) -> list[str]:
    return ["edgetpu_compiler", "-s", "-o", str(out_dir), str(model_path)]


@dataclass(frozen=True)
class EdgeTpuCheck:
    """Static check of a .tflite against what the Edge TPU compiler accepts: :data:`EDGETPU_OPS`, 8-bit
    tensors, one subgraph and static shapes.

    unsupported_ops : op names not in the table (the compiler stops mapping at the first one).
    float_ops : op names touching a tensor that is not int8/uint8/int32 (they stay on the CPU).
    first_cpu_op : index of the first op in subgraph 0 the TPU cannot run, or None.
    subgraphs : number of subgraphs (a WHILE loop has several; the compiler rejects them).
    dynamic_tensors : tensors whose shape signature has a -1 (e.g. a free batch size); the compiler needs every
        size fixed.
    """

    unsupported_ops: list[str]
    float_ops: list[str]
    first_cpu_op: int | None
    subgraphs: int
    dynamic_tensors: int = 0

    @property
    def ready(self) -> bool:
        return self.first_cpu_op is None and self.subgraphs == 1 and self.dynamic_tensors == 0

    def problems(self) -> str:
        """Why the compiler would not take the model as a whole ("" when :attr:`ready`)."""
        problems = [f"not in the table: {', '.join(self.unsupported_ops)}" if self.unsupported_ops else "",
                    f"non-int8 tensors: {', '.join(self.float_ops)}" if self.float_ops else "",
                    f"{self.subgraphs} subgraphs" if self.subgraphs > 1 else "",
                    f"{self.dynamic_tensors} tensor(s) of dynamic shape" if self.dynamic_tensors else ""]
        return "; ".join(p for p in problems if p)

    def to_dict(self) -> dict:
        return {**asdict(self), "ready": self.ready}


def check_ops(data: bytes) -> EdgeTpuCheck:
    model = read_model(data)
    unsupported, floats, first = set(), set(), None
    dynamic = sum(1 for subgraph in model.subgraphs for tensor in subgraph.tensors
                  if tensor.shapeSignature is not None and min(tensor.shapeSignature, default=0) < 0)
    for subgraph_index, subgraph in enumerate(model.subgraphs):
        for index, op in enumerate(subgraph.operators):
            name = op_name(model, op)
            tensors = [int(t) for t in list(op.inputs) + list(op.outputs) if t >= 0]
            types = {TYPE_NAMES.get(subgraph.tensors[t].type, "?") for t in tensors}
            bad = False
            if name not in EDGETPU_OPS:
                unsupported.add(name)
                bad = True
            if not types <= _TPU_TYPES:
                floats.add(name)
                bad = True
            if bad and first is None and subgraph_index == 0:
                first = index
    return EdgeTpuCheck(sorted(unsupported), sorted(floats), first, len(model.subgraphs), dynamic)


def run_compiler(model_path: Path, out_dir: Path, timeout_s: float = 600) -> dict | None:
    """Run ``edgetpu_compiler`` if it is on PATH; None otherwise.

    Returns ``{"command", "returncode", "ops_on_tpu", "ops_on_cpu", "output"}`` (op counts None when the
    compiler did not print them).
    """
    if shutil.which("edgetpu_compiler") is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(_compile_args(model_path, out_dir), capture_output=True, text=True, timeout=timeout_s)
    text = proc.stdout + proc.stderr

    def count(where: str) -> int | None:
        match = re.search(rf"Number of operations that will run on {where}:\s*(\d+)", text)
        return int(match.group(1)) if match else None

    return {"command": compile_command(model_path, out_dir), "returncode": proc.returncode,
            "ops_on_tpu": count("Edge TPU"), "ops_on_cpu": count("CPU"), "output": text[-4000:]}
