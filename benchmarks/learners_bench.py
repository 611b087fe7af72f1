"""Learner figures: wall time of an ESC-10-sized MLP evaluation, and ReLU vs linear output logits.

    .venv/bin/python benchmarks/learners_bench.py speed [--repeat 5 --epochs 400]
    .venv/bin/python benchmarks/learners_bench.py logits [--real-only] [--data FILE.nc ...]

``speed`` times ``evaluate`` on synthetic data the size of auDeep's fused ESC-10 representations (400 instances,
4096 dimensions, 10 classes, 5 folds). ``logits`` cross-validates both output variants with the same seeds on
synthetic data and on the given data sets (representations as they are; spectrograms as per-band mean and
standard deviation over time: 2 x mel bands dimensions). Load averages are printed because the figures depend on them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from audeep_edge.training.evaluation import cross_validation_splits, evaluate
from audeep_edge.training.learners import MLP, LinearSVM, MLPOptions


def synthetic(instances=400, dim=4096, classes=10, folds=5, signal=0.01, seed=0):
    """Class means in a random 64-dim subspace plus unit noise; ``signal`` sets the difficulty.

    Returns features (N, D) float32, labels (N,), filenames (N,), cv_folds (N, folds).
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(64, dim))
    labels = np.arange(instances) % classes
    centers = rng.normal(size=(classes, 64)) @ basis
    features = signal * centers[labels] + rng.normal(size=(instances, dim))
    valid_fold = (np.arange(instances) // classes) % folds
    cv = (np.arange(folds)[None, :] == valid_fold[:, None]).astype(np.int64)
    return features.astype(np.float32), labels, np.array([f"{i}.wav" for i in range(instances)]), cv


def real_features(path):
    """Features, class indices, files and folds of a labelled netCDF data set with CV folds.

    Vectors (``generate`` output) are used as they are; spectrograms become per-band mean and std over time.
    """
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(path)
    features = ds.features if ds.features.ndim == 2 else \
        np.concatenate([ds.features.mean(axis=1), ds.features.std(axis=1)], axis=1)
    names = sorted(ds.label_map, key=ds.label_map.get)
    labels = np.array([names.index(n) for n in ds.label_nominal])
    return features, labels, ds.filenames, ds.cv_folds


def run_speed(args) -> None:
    features, labels, files, cv = synthetic()
    options = MLPOptions(num_epochs=args.epochs)
    fit_times = []

    class Timed(MLP):
        def fit(self, *a, **k):
            start = time.perf_counter()
            super().fit(*a, **k)
            fit_times.append(time.perf_counter() - start)
            return self

    print(f"load average before: {os.getloadavg()}")
    start, cpu_start = time.perf_counter(), time.process_time()
    result = evaluate(Timed(options), features, labels, files, cross_validation_splits(cv), 10, repeat=args.repeat,
                      seed=0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"ESC-10-sized MLP evaluation (400 x 4096, 10 classes, 5 folds x repeat {args.repeat}, "
          f"{args.epochs} epochs): {wall:.1f} s wall, {cpu:.1f} s CPU; fit: first {fit_times[0]:.1f} s, "
          f"median {np.median(fit_times):.1f} s ({1000 * np.median(fit_times) / args.epochs:.1f} ms/epoch); "
          f"accuracy {100 * result.accuracy:.1f}%")
    print(f"load average after: {os.getloadavg()}")


def tied_at_minimum(learner, features, labels, split) -> float:
    """Mean number of classes per evaluated instance that share its lowest probability (1 = no ties)."""
    learner.fit(features[split.train], labels[split.train], int(labels.max()) + 1, seed=0)
    probabilities = learner.predict_proba(features[split.evaluate])
    return float(np.mean(np.sum(probabilities == probabilities.min(axis=1, keepdims=True), axis=1)))


def run_logits(args) -> None:
    sets = {"synthetic 400x4096": synthetic()}
    for path in args.data:
        sets[path] = real_features(path)
    print(f"load average before: {os.getloadavg()}")
    for name, (features, labels, files, cv) in sets.items():
        if args.real_only and name.startswith("synthetic"):
            continue
        classes = int(labels.max()) + 1
        splits = cross_validation_splits(cv)
        print(f"{name}: {features.shape}, {len(splits)} folds x repeat {args.repeat}")
        variants = {"linear logits": MLP(MLPOptions(relu_logits=False)),
                    "ReLU logits (auDeep)": MLP(MLPOptions(relu_logits=True)), "linear SVM C=0.01": LinearSVM(0.01)}
        accuracies = {}
        for label, learner in variants.items():
            result = evaluate(learner, features, labels, files, splits, classes, repeat=args.repeat, seed=args.seed)
            accuracies[label] = np.array([s.accuracy for s in result.scores])
            per_repeat = accuracies[label].reshape(args.repeat, -1).mean(axis=1)
            print(f"  {label:22s} accuracy {100 * result.accuracy:5.1f}% (std over folds "
                  f"{100 * result.accuracy_std:4.1f}), UAR {100 * result.uar:5.1f}%; "
                  f"per repeat {np.round(100 * per_repeat, 1).tolist()}")
        # same seed => same initial weights and dropout masks per (repeat, fold): a paired comparison
        diff = 100 * (accuracies["linear logits"] - accuracies["ReLU logits (auDeep)"])
        print(f"  linear - ReLU, paired over {diff.size} (repeat, fold): {diff.mean():+.2f} points "
              f"(standard error {diff.std(ddof=1) / np.sqrt(diff.size):.2f})")
        for label in ("linear logits", "ReLU logits (auDeep)"):
            print(f"  {label:22s} fold 1: {tied_at_minimum(variants[label], features, labels, splits[0]):.1f} "
                  "classes per instance share the lowest probability")
    print(f"load average after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--repeat", type=int, default=5)
    speed.add_argument("--epochs", type=int, default=400)
    logits = sub.add_parser("logits")
    logits.add_argument("--data", nargs="*", default=[], metavar="NC",
                        help="labelled netCDF files with CV folds: representations, or spectrograms (band statistics)")
    logits.add_argument("--repeat", type=int, default=3)
    logits.add_argument("--seed", type=int, default=0)
    logits.add_argument("--real-only", action="store_true", help="skip the synthetic set")
    args = parser.parse_args()
    run_speed(args) if args.what == "speed" else run_logits(args)


if __name__ == "__main__":
    main()
