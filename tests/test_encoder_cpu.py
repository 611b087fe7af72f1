"""The runner follows the CPU: LiteRT's CompiledModel only where its accelerator library can load, and native
stderr that explains a native abort.

The Raspberry Pi CPUs are read from the cpuinfo files the ARM smoke test (scripts/arm_smoke.sh) shows to
emulated Pis; there the real Cortex-A72 and A76 run the same choice end to end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stream_testing import TINY_DYNAMIC, cosine

from audeep_edge.bundle import load_bundle
from audeep_edge.encoder import Encoder, interpreter
from audeep_edge.encoder.cpu import ARM64_HWCAP, compiled_model_choice, cpuinfo_features, hwcap_features, read_cpu

ARM = Path(__file__).resolve().parents[1] / "scripts" / "arm"
PI4, PI5 = ARM / "cpuinfo-cortex-a72", ARM / "cpuinfo-cortex-a76"


def pi(cpuinfo: Path, hwcap: int = 0):
    """The CPU as ``read_cpu`` sees it on a Linux arm64 board with this cpuinfo (``hwcap`` 0: no HWCAP)."""
    return read_cpu("aarch64", "Linux", cpuinfo, hwcap=hwcap)


def test_a_pi_4_gets_the_plain_interpreter_and_is_told_what_it_lacks():
    cpu = pi(PI4)
    assert cpu.features == ("fp", "asimd", "evtstrm", "crc32", "cpuid") and cpu.source == str(PI4)
    choice = compiled_model_choice(cpu)
    assert not choice.compiled_model
    assert choice.reason.startswith("lacks aes, lse, dotprod, fp16, rdm, rcpc, sha2, which LiteRT's CompiledModel")
    assert "plain interpreter" in choice.reason


def test_a_pi_5_gets_compiled_model():
    choice = compiled_model_choice(pi(PI5))
    assert choice.compiled_model and choice.reason.startswith("has aes, lse, crc, dotprod, fp16, rdm, rcpc, sha2")


def test_hwcap_wins_over_cpuinfo_and_one_missing_feature_is_enough():
    """HWCAP is what the CPU (or QEMU's model of it) executes; QEMU's Cortex-A72 has the crypto extension."""
    a76 = {name: 1 << bit for bit, name in enumerate(ARM64_HWCAP)}
    hwcap = sum(a76[name] for name in cpuinfo_features(PI5.read_text()))
    assert hwcap_features(hwcap) == pi(PI5).features
    cpu = pi(PI4, hwcap=hwcap)
    assert cpu.source == "HWCAP" and compiled_model_choice(cpu).compiled_model
    without_lse = compiled_model_choice(pi(PI4, hwcap=hwcap & ~a76["atomics"]))
    assert not without_lse.compiled_model and without_lse.reason.startswith("lacks lse,")


def test_an_arm64_cpu_that_cannot_be_read_gets_the_plain_interpreter(tmp_path):
    choice = compiled_model_choice(pi(tmp_path / "no-cpuinfo"))
    assert not choice.compiled_model and choice.reason.startswith("features unreadable")


def test_x86_keeps_compiled_model_and_shows_its_simd_levels():
    cpu = read_cpu()
    if cpu.machine != "x86_64":
        pytest.skip("an x86-64 host")
    assert set(cpu.features) <= {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni"}
    assert compiled_model_choice(cpu).compiled_model
    assert "CompiledModel" in Encoder(load_bundle(TINY_DYNAMIC).model_path).backend


def test_a_model_on_a_cpu_without_compiled_model_runs_on_the_interpreter_with_the_same_outputs(monkeypatch):
    """What a Pi 4 runs (its cpuinfo stands in for the CPU): the unrolled dynamic bundle on the builtin kernels
    (XNNPACK would pack its weights once per time step), with CompiledModel's results."""
    path = load_bundle(TINY_DYNAMIC).model_path
    compiled = Encoder(path)
    monkeypatch.setattr(interpreter, "this_cpu_choice", lambda: (pi(PI4), compiled_model_choice(pi(PI4))))
    plain = Encoder(path)
    assert plain.backend.endswith("Interpreter") and plain.delegate == "none"
    assert Encoder(path, delegate="xnnpack").backend.endswith("Interpreter")
    windows = np.random.default_rng(0).uniform(-1, 1, (5, *compiled.input_shape[1:])).astype(np.float32)
    for window in windows:
        assert cosine(compiled(window).embedding, plain(window).embedding) >= 0.999


def test_a_native_abort_during_model_set_up_still_explains_itself():
    """LiteRT writes `FATAL ERROR: ...` to file descriptor 2 and kills the process; its routine INFO lines stay
    hidden meanwhile."""
    code = ("import os\nfrom audeep_edge.encoder.native_stderr import native_stderr_filtered\n"
            "with native_stderr_filtered():\n"
            "    os.write(2, b'INFO: [environment.cc:36] Creating LiteRT environment with options\\n')\n"
            "    os.write(2, b'FATAL ERROR: This binary was compiled with lse enabled, but this feature is not "
            "available on this processor')\n"
            "    os.abort()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGABRT
    assert done.stderr == ("FATAL ERROR: This binary was compiled with lse enabled, but this feature is not "
                           "available on this processor")
