"""Novelty on ESC-10: fit the baseline on 8 classes, score held-out clips of the other 2 against held-out clips of
the 8, report the ROC AUC (novel = positive) for each reference model, averaged over class pairs.

Protocol: for each of the 45 pairs of "novel" classes and each test fold f (fold 5 by default; ``--all-folds``
rotates f over 1..5), the baseline is fitted on the clips of the 8 normal classes in the other folds and scores
every clip of fold f. The AUC does not depend on the calibration (it is monotone); the calibration shows in the
false-alarm rate (normal test clips with score >= threshold) and the detection rate (novel ones) at the default
event threshold.

    .venv/bin/python benchmarks/novelty_eval.py --representations runs/esc10-60/representations.nc
    .venv/bin/python benchmarks/novelty_eval.py --bundle audeep_edge/assets/esc10-int8.bundle \\
        --esc10 ESC-10 --cache /tmp/esc10-int8.npz
"""

from __future__ import annotations

import argparse
import os
import itertools
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # timings of one core, as the runtime uses; set before numpy
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import esc10_embeddings  # noqa: E402

from audeep_edge.encoder.whitening import read_whitening  # noqa: E402
from audeep_edge.head.baseline_fit import fit_baseline  # noqa: E402
from audeep_edge.head.novelty import NoveltyConfig  # noqa: E402

#: name -> fit_baseline keyword arguments
MODELS = {
    "lof k=5 (default)": {"method": "lof", "k": 5},
    "lof k=10": {"method": "lof", "k": 10},
    "knn k=5": {"method": "knn", "k": 5},
    "knn k=1": {"method": "knn", "k": 1},
    "knn-cosine k=5": {"method": "knn", "metric": "cosine", "k": 5},
    "gmm K=4 d=16": {"method": "gmm", "components": 4, "dims": 16},
    "gmm K=1 d=32": {"method": "gmm", "components": 1, "dims": 32},
    "gmm K=4 d=32": {"method": "gmm", "components": 4, "dims": 32},
}


def evaluate(data: esc10_embeddings.Embeddings, folds: list[int], models: dict[str, dict],
             threshold: float, space=None) -> dict[str, dict[str, float]]:
    """Per model: ROC AUCs, false alarms, detections and fit times; ``space``: the bundle's whitening, undone by
    the baselines as ``baseline fit`` does."""
    results: dict[str, dict[str, list[float]]] = {name: {"auc": [], "false_alarm": [], "detected": [],
                                                         "fit_s": []} for name in models}
    for novel in itertools.combinations(data.classes, 2):
        is_novel = np.isin(data.labels, novel)
        for fold in folds:
            train = ~is_novel & (data.folds != fold)
            test = data.folds == fold
            for name, kwargs in models.items():
                started = time.perf_counter()
                baseline = fit_baseline(data.x[train], groups=data.recordings[train], space=space, **kwargs)
                results[name]["fit_s"].append(time.perf_counter() - started)
                raw = baseline.raw_scores(data.x[test])
                score = baseline.score(data.x[test])
                positive = is_novel[test]
                results[name]["auc"].append(esc10_embeddings.roc_auc(raw[~positive], raw[positive]))
                results[name]["false_alarm"].append(float(np.mean(score[~positive] >= threshold)))
                results[name]["detected"].append(float(np.mean(score[positive] >= threshold)))
    return {name: {key: values for key, values in r.items()} for name, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    esc10_embeddings.add_arguments(parser)
    parser.add_argument("--all-folds", action="store_true", help="rotate the test fold over 1..5 (default: 5)")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    data = esc10_embeddings.load(args)
    folds = [1, 2, 3, 4, 5] if args.all_folds else [5]
    threshold = NoveltyConfig().threshold
    print(f"embeddings: {data.source}: {data.x.shape[0]} windows x {data.x.shape[1]}, {len(data.classes)} classes, "
          f"{len(set(data.clips.tolist()))} clips")
    print(f"protocol: 45 novel-class pairs x test fold(s) {folds}; baseline on the other 8 classes' other folds "
          f"(~{int(np.mean([(~np.isin(data.labels, p) & (data.folds != folds[0])).sum() for p in itertools.combinations(data.classes, 2)]))} windows)")
    space = read_whitening(args.bundle) if args.bundle else None
    if space is not None:
        print(f"the baselines read the embeddings with the bundle's whitening undone ({', '.join(space.parts)})")
    results = evaluate(data, folds, {name: MODELS[name] for name in args.models}, threshold, space)
    print(f"\n| model | ROC AUC mean | std over pairs | min | false alarms @ {threshold} | detected @ {threshold} "
          "| fit time (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        auc = np.array(r["auc"])
        print(f"| {name} | {auc.mean():.3f} | {auc.std():.3f} | {auc.min():.3f} | "
              f"{np.mean(r['false_alarm']):.3f} | {np.mean(r['detected']):.3f} | "
              f"{statistics.median(r['fit_s']) * 1e3:.0f} ms |")
    best = max(results, key=lambda name: np.mean(results[name]["auc"]))
    pairs = list(itertools.combinations(data.classes, 2))
    per_pair = np.array(results[best]["auc"]).reshape(len(pairs), len(folds)).mean(axis=1)
    order = np.argsort(per_pair)
    print(f"\n{best}: hardest pairs " + ", ".join(f"{' + '.join(pairs[i])} {per_pair[i]:.2f}" for i in order[:3])
          + "; easiest " + ", ".join(f"{' + '.join(pairs[i])} {per_pair[i]:.2f}" for i in order[-3:]))


if __name__ == "__main__":
    main()
