"""This CPU's instruction-set features, and whether LiteRT's ``CompiledModel`` may run on it.

``CompiledModel`` creates a LiteRT environment, which always loads ``libLiteRtWebGpuAccelerator.so``. On Linux
arm64 that library (ai-edge-litert 2.1.6 to 2.3.0) is built for ARMv8.2-A with the crypto extension and checks
the CPU as it loads: where a feature is missing it prints ``FATAL ERROR: This binary was compiled with lse
enabled, but this feature is not available on this processor`` and kills the process (``Illegal instruction``,
exit 132). The Raspberry Pi 4's Cortex-A72 (ARMv8.0, no crypto) is such a CPU; the Pi 5's Cortex-A76 is not.
The classic interpreter has no such library and runs everywhere, so an arm64 CPU without every feature gets it.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
AT_HWCAP = 16  # getauxval(3) key of the kernel's feature bits

#: Linux arm64 ``AT_HWCAP`` bits by position (arch/arm64/include/uapi/asm/hwcap.h), named as /proc/cpuinfo names them.
ARM64_HWCAP = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp",
               "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512",
               "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg")

#: What ``libLiteRtWebGpuAccelerator.so`` demands on arm64: cpuinfo name -> the name in its FATAL message.
COMPILED_MODEL_NEEDS = {"aes": "aes", "atomics": "lse", "crc32": "crc", "asimddp": "dotprod", "fphp": "fp16",
                        "asimdhp": "fp16", "asimdrdm": "rdm", "lrcpc": "rcpc", "sha2": "sha2"}

#: x86 SIMD levels shown by ``doctor`` (the CPU kernels dispatch on them; the full flag list is ~100 names).
X86_SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni")


@dataclass(frozen=True)
class Cpu:
    """``machine`` and ``system`` (``platform.machine()``, ``platform.system()``), ``features`` (cpuinfo names in
    cpuinfo's order; for x86 only :data:`X86_SIMD`) and where they were read (``source``: ``HWCAP``,
    ``/proc/cpuinfo``, or empty when they could not be)."""

    machine: str
    system: str
    features: tuple[str, ...]
    source: str

    @property
    def linux_arm64(self) -> bool:
        return self.system == "Linux" and self.machine.lower() in ("aarch64", "arm64")


@dataclass(frozen=True)
class RunnerChoice:
    """Whether ``CompiledModel`` may be created on this CPU, and why (one clause)."""

    compiled_model: bool
    reason: str


def hwcap_features(hwcap: int) -> tuple[str, ...]:
    """Decode an arm64 ``AT_HWCAP`` word into cpuinfo feature names."""
    return tuple(name for bit, name in enumerate(ARM64_HWCAP) if hwcap >> bit & 1)


def cpuinfo_features(text: str) -> tuple[str, ...]:
    """The names on the first ``Features`` (arm64) or ``flags`` (x86) line of a /proc/cpuinfo text."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Features", "flags"):
            return tuple(value.split())
    return ()


def read_cpu(machine: str | None = None, system: str | None = None, cpuinfo: Path = CPUINFO,
             hwcap: int | None = None) -> Cpu:
    """This machine's CPU: on Linux arm64 the kernel's ``AT_HWCAP`` (what the CPU, or QEMU's model of it,
    executes; ``hwcap`` default: ``getauxval``), else the ``Features`` of ``cpuinfo``; on x86 its SIMD flags;
    off Linux no features."""
    unread = Cpu(machine or platform.machine(), system or platform.system(), (), "")
    if unread.system != "Linux":
        return unread
    if unread.linux_arm64:
        hwcap = _getauxval(AT_HWCAP) if hwcap is None else hwcap
        if hwcap:
            return Cpu(unread.machine, unread.system, hwcap_features(hwcap), "HWCAP")
    try:
        features = cpuinfo_features(cpuinfo.read_text(errors="replace"))
    except OSError:
        return unread
    if not unread.linux_arm64:
        features = tuple(name for name in X86_SIMD if name in features)
    return Cpu(unread.machine, unread.system, features, str(cpuinfo) if features else "")


def _getauxval(key: int) -> int:
    """``getauxval(key)`` from the C library; 0 where there is none."""
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return 0
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return int(getauxval(key))


def compiled_model_choice(cpu: Cpu) -> RunnerChoice:
    """May ``CompiledModel`` run on ``cpu``? Only Linux arm64 is checked; elsewhere nothing is known to stop it."""
    needs = ", ".join(_needs_names(COMPILED_MODEL_NEEDS))
    if not cpu.linux_arm64:
        return RunnerChoice(True, f"LiteRT's CompiledModel needs no CPU check on {cpu.system} {cpu.machine}: "
                                  "models that share their weights run on it")
    if not cpu.source:
        return RunnerChoice(False, "features unreadable: models run on the plain interpreter (LiteRT's "
                                   f"CompiledModel aborts the process on an arm64 CPU without {needs})")
    missing = _needs_names(name for name in COMPILED_MODEL_NEEDS if name not in cpu.features)
    if missing:
        return RunnerChoice(False, f"lacks {', '.join(missing)}, which LiteRT's CompiledModel needs (its "
                                   "accelerator library aborts the process without them): models run on the "
                                   "plain interpreter")
    return RunnerChoice(True, f"has {needs}, which LiteRT's CompiledModel needs: models that share their "
                              "weights run on it")


def _needs_names(cpuinfo_names) -> list[str]:
    """LiteRT's names for cpuinfo features, each once, in the order of :data:`COMPILED_MODEL_NEEDS`."""
    wanted = set(cpuinfo_names)
    return list(dict.fromkeys(litert for name, litert in COMPILED_MODEL_NEEDS.items() if name in wanted))


@functools.cache
def this_cpu_choice() -> tuple[Cpu, RunnerChoice]:
    """This machine's CPU and the choice for it (read once per process)."""
    cpu = read_cpu()
    return cpu, compiled_model_choice(cpu)
