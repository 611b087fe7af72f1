"""Preprocessing speed on ESC-10 with the auDeep tutorial settings, against a naive scipy implementation.

Settings: 0.08 s windows, 0.04 s overlap, 128 mel bands, fixed 5 s, clip below -60 dB (124 x 128 per clip).
Runs, interleaved per repetition: the naive baseline (soundfile + ``scipy.signal.spectrogram`` per file, as
auDeep computes it) with numpy's default BLAS threads and with one BLAS thread (what ``preprocess`` sets),
then ``preprocess`` with 1 job and with 2 jobs. Prints medians and ratios, and the largest
difference between our features and the baseline's.

    .venv/bin/python benchmarks/preprocess_bench.py --basedir ESC-10 [--repeats 3] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import get_window, spectrogram
from threadpoolctl import threadpool_limits

from audeep_edge.dataset.parsers import get_parser
from audeep_edge.dataset.preprocess import preprocess
from audeep_edge.features import FrontendConfig, mel_filterbank

CFG = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-60, fixed_length=5.0)


def naive_features(path: Path, banks: dict) -> np.ndarray:
    """auDeep's per-file recipe, written directly with scipy.signal.spectrogram (mono files)."""
    x, fs = soundfile.read(str(path), always_2d=True)
    n_fixed = int(CFG.fixed_length * fs)
    x = np.pad(x, ((0, max(0, n_fixed - len(x))), (0, 0)))[:n_fixed].mean(axis=1)
    x = np.append(x[0], x[1:] - 0.95 * x[:-1])
    n, o = int(fs * CFG.window_width), int(fs * CFG.window_overlap)
    _, _, mag = spectrogram(x, fs, window=get_window("hann", n, fftbins=True), noverlap=o, mode="magnitude")
    if fs not in banks:
        banks[fs] = mel_filterbank(fs=fs, n_fft=n, n_mels=CFG.mel_bands)
    mel = banks[fs] @ (mag**2 / n)
    mel = np.maximum(mel, mel[mel > 0].min())
    db = np.maximum(10 * np.log10(mel / mel.max()), CFG.clip_below).T
    return (2 * (db - db.min()) / (db.max() - db.min()) - 1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--basedir", type=Path, required=True, metavar="DIR", help="the ESC-10 directory")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N files (quick check)")
    args = ap.parse_args()
    if not args.basedir.is_dir():
        ap.error(f"--basedir {args.basedir}: not a directory")

    parser = get_parser(None, args.basedir)
    instances = parser.parse()[: args.limit]
    parser.parse = lambda: instances  # the same file list for every run
    times: dict[str, list[float]] = {"naive scipy, 1 process": [], "naive, 1 BLAS thread": [],
                                     "ours --jobs 1": [], "ours --jobs 2": []}
    for _ in range(args.repeats):
        for name, limit in (("naive scipy, 1 process", None), ("naive, 1 BLAS thread", 1)):
            t = time.perf_counter()
            banks: dict = {}
            with threadpool_limits(limits=limit, user_api="blas"):
                naive = np.stack([naive_features(i.path, banks) for i in instances])
            times[name].append(time.perf_counter() - t)
        for jobs in (1, 2):
            t = time.perf_counter()
            ours = preprocess(parser, CFG, jobs=jobs).dataset
            times[f"ours --jobs {jobs}"].append(time.perf_counter() - t)

    base = statistics.median(times["naive scipy, 1 process"])
    print(f"ESC-10 preprocess: {len(instances)} files from {args.basedir}, {args.repeats} repetitions, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"output shape per clip: {ours.feature_shape}; instances {ours.num_instances}")
    print(f"max |ours - naive| = {np.abs(ours.features - naive).max():.2e}")
    print(f"{'run':<26}{'median s':>10}{'ms/file':>10}{'naive/run':>11}   all runs (s)")
    for name, runs in times.items():
        med = statistics.median(runs)
        print(f"{name:<26}{med:>10.2f}{1000 * med / len(instances):>10.1f}{base / med:>11.2f}   "
              + " ".join(f"{r:.2f}" for r in runs))


if __name__ == "__main__":
    main()
