"""Test helpers for the streaming runtime: run the installed CLI, read its JSONL, cut real audio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from audeep_edge.audio import mix, read_audio, resample
from audeep_edge.bundle import sha256_of
from audeep_edge.pipeline.assemble import ASSETS

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.bundle"  # float32, 16 kHz, 24 x 32 mel windows, 0.4 s hop, labels Dog bark/Rain/Rooster
TINY_INT8 = DATA / "tiny-int8.bundle"
TINY_DYNAMIC = DATA / "tiny-dynamic.bundle"  # the same weights unrolled, int8 weights and float activations
CLI = str(Path(sys.executable).with_name("audeep-edge"))
RAIN = DATA / "esc_mini" / "002 - Rain" / "1-17367-A.ogg"


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``audeep-edge ARGS`` in a subprocess (the console script a user runs), text output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([CLI, *map(str, args)], input=stdin, capture_output=True, timeout=timeout, env=env)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def assert_one_error_line(done: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 2, exactly one ``error:`` line on stderr, no traceback; return that line."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def read_jsonl(text: str) -> dict[str, list[dict]]:
    """JSONL sink output grouped by its ``topic`` key (info, window, health, event)."""
    grouped: dict[str, list[dict]] = {}
    for line in text.splitlines():
        record = json.loads(line)
        grouped.setdefault(record.pop("topic"), []).append(record)
    return grouped


def real_clip(path: Path, fs: int) -> tuple[np.ndarray, Path]:
    """The committed ESC-10 rain clip as mono at ``fs`` Hz, also written as a float WAV next to ``path``."""
    samples, file_fs = read_audio(RAIN)
    x = resample(mix(samples, "MEAN"), file_fs, fs)
    soundfile.write(str(path), x, fs, subtype="FLOAT")
    return x, path


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def swapped_model_bundle(tmp_path: Path) -> Path:
    """The tiny bundle with the bundled ESC-10 model (124 x 128 input) put in its place and the sha256 updated: a
    consistent hash over a model that does not match the manifest."""
    bundle = tmp_path / "swapped.bundle"
    if not bundle.exists():
        shutil.copytree(TINY, bundle)
        shutil.copyfile(ASSETS / "esc10-dynamic.bundle" / "model.tflite", bundle / "model.tflite")
        manifest = json.loads((bundle / "bundle.json").read_text())
        manifest["sha256"] = sha256_of(bundle / "model.tflite")
        (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle
