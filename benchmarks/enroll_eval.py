"""Enrolling on ESC-10: learn each class from k = 1, 3, 5 clips and classify the rest; time the enrolment.

Protocols (test fold f rotates over 1..5, ``--draws`` random choices of the k clips per fold):

* closed set: all 10 classes enrolled from k clips of the other folds (nothing else known); accuracy of the
  nearest centroid (``Enrollment.head``) on fold f; references: the centroids of all ~32 training clips per
  class, a logistic regression on the same k clips (scikit-learn), and centroids of embeddings centred on the
  mean of the other folds (what a baseline would have heard);
* open set: one class enrolled from k clips; share of fold f's clips of that class accepted (membership >= 0.5)
  and of the 9 other classes accepted by mistake: with a baseline (the other folds' clips of the 9 other classes
  as this device's ordinary sound: per-class thresholds) and without (the bundle's ``accept_similarity``, else
  the fixed ``ACCEPT_SIMILARITY``);
* trained head + enrolled class: a logistic-regression head trained on 9 classes (other folds) plus the 10th
  enrolled from k clips with those 9 classes' training clips as the baseline, combined as ``listen`` does
  (``EnrolledHead.combine``); accuracy on fold f.

Timing: the enrolment fit alone (``Enrollment.add`` + ``head`` with a 300-window baseline) for 30 windows, and,
with ``--bundle``, embedding + fit of 30 s of audio (six ESC-10 clips of one class).

    .venv/bin/python benchmarks/enroll_eval.py --representations runs/esc10-60/representations.nc
    .venv/bin/python benchmarks/enroll_eval.py --bundle audeep_edge/assets/esc10-int8.bundle --esc10 ESC-10 \\
        --cache /tmp/e.npz
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # timings of one core, as the runtime uses; set before numpy
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import esc10_embeddings  # noqa: E402

from audeep_edge.bundle import load_bundle  # noqa: E402
from audeep_edge.head.enroll import ACCEPT_SIMILARITY, FALSE_ACCEPT, Enrollment  # noqa: E402

SHOTS = (1, 3, 5)


def enrolled_head(x: np.ndarray, labels: np.ndarray, classes: list[str], negatives: np.ndarray | None = None,
                  accept: float | None = None):
    enrollment = Enrollment("unused", "sha", x.shape[1], accept)
    for c in classes:
        enrollment.add(c, x[labels == c])
    return enrollment.head(negatives)


def nearest(head, x: np.ndarray) -> np.ndarray:
    return np.array(head.names)[head.similarities(x).argmax(1)]


def pick(rng: np.random.Generator, data: esc10_embeddings.Embeddings, pool: np.ndarray, c: str, k: int) -> np.ndarray:
    """Mask of the windows of k random clips of class c within ``pool``."""
    clips = np.unique(data.clips[pool & (data.labels == c)])
    return np.isin(data.clips, rng.choice(clips, size=k, replace=False)) & pool


def logistic(x_train, y_train, x_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(x_train), y_train)
    return model, model.predict_proba(scaler.transform(x_test))


def closed_set(data, draws: int, with_sklearn: bool) -> dict[str, dict[int, list[float]]]:
    classes = data.classes
    acc: dict[str, dict[int, list[float]]] = {}

    def record(name: str, k: int, value: float) -> None:
        acc.setdefault(name, {}).setdefault(k, []).append(value)

    for fold in range(1, 6):
        pool, test = data.folds != fold, data.folds == fold
        truth = data.labels[test]
        centre = data.x[pool].mean(axis=0)
        record("centroids of all training clips", 32, float(np.mean(
            nearest(enrolled_head(data.x[pool], data.labels[pool], classes), data.x[test]) == truth)))
        rng = np.random.default_rng(fold)
        for k in SHOTS:
            for _ in range(draws):
                chosen = np.zeros(len(data.x), bool)
                for c in classes:
                    chosen |= pick(rng, data, pool, c, k)
                head = enrolled_head(data.x[chosen], data.labels[chosen], classes)
                record("nearest centroid (enroll.py)", k, float(np.mean(nearest(head, data.x[test]) == truth)))
                centred = enrolled_head(data.x[chosen] - centre, data.labels[chosen], classes)
                record("nearest centroid, centred on the baseline mean", k,
                       float(np.mean(nearest(centred, data.x[test] - centre) == truth)))
                if with_sklearn:
                    model, p = logistic(data.x[chosen], data.labels[chosen], data.x[test])
                    record("logistic regression on the k clips (sklearn)", k,
                           float(np.mean(model.classes_[p.argmax(1)] == truth)))
    return acc


def open_set(data, draws: int, accept: float | None) -> dict[tuple[str, int], tuple[list, list, list]]:
    """(with/without baseline, k) -> (true accept rates, false accept rates, ROC AUCs of the similarity);
    ``accept``: the bundle's no-baseline threshold (None: the fixed default)."""
    out: dict[tuple[str, int], tuple[list, list, list]] = {}
    for fold in range(1, 6):
        pool, test = data.folds != fold, data.folds == fold
        rng = np.random.default_rng(100 + fold)
        for k in SHOTS:
            for c in data.classes:
                everyday = data.x[pool & (data.labels != c)]
                mine = data.labels[test] == c
                for _ in range(draws):
                    chosen = pick(rng, data, pool, c, k)
                    for mode, negatives in (("baseline", everyday), ("no baseline", None)):
                        head = enrolled_head(data.x[chosen], data.labels[chosen], [c], negatives, accept)
                        sims = head.similarities(data.x[test])
                        accepted = head.membership(sims) >= 0.5
                        tpr, fpr, aucs = out.setdefault((mode, k), ([], [], []))
                        tpr.append(float(np.mean(accepted[mine])))
                        fpr.append(float(np.mean(accepted[~mine])))
                        aucs.append(esc10_embeddings.roc_auc(sims[~mine, 0], sims[mine, 0]))
    return out


def trained_plus_enrolled(data, draws: int) -> dict[int, list[tuple[float, float, float]]]:
    """k -> [(10-class accuracy, recall of the enrolled class, accuracy on the 9 trained)]; k = 0 is the
    9-class head alone (the enrolled class's clips all wrong)."""
    out: dict[int, list[tuple[float, float, float]]] = {}
    for fold in range(1, 6):
        pool, test = data.folds != fold, data.folds == fold
        rng = np.random.default_rng(200 + fold)
        truth = data.labels[test]
        for c in data.classes:
            known = pool & (data.labels != c)
            model, base = logistic(data.x[known], data.labels[known], data.x[test])
            mine = truth == c
            alone = model.classes_[base.argmax(1)]
            out.setdefault(0, []).append((float(np.mean(alone == truth)), 0.0,
                                          float(np.mean(alone[~mine] == truth[~mine]))))
            for k in SHOTS:
                for _ in range(max(1, draws // 2)):
                    chosen = pick(rng, data, pool, c, k)
                    head = enrolled_head(data.x[chosen], data.labels[chosen], [c], data.x[known])
                    predicted = np.array([*model.classes_, c])[head.combine(data.x[test], base).argmax(1)]
                    out.setdefault(k, []).append((float(np.mean(predicted == truth)),
                                                  float(np.mean(predicted[mine] == c)),
                                                  float(np.mean(predicted[~mine] == truth[~mine]))))
    return out


def time_fit(dim: int, windows: int = 30, repeats: int = 200) -> float:
    """Median seconds of Enrollment.add + head (9 other classes, a 300-window baseline) for ``windows``
    embeddings of size ``dim``."""
    rng = np.random.default_rng(0)
    enrollment = Enrollment("unused", "sha", dim)
    for c in range(9):
        enrollment.add(f"c{c}", rng.normal(size=(windows, dim)).astype(np.float32))
    negatives = rng.normal(size=(300, dim)).astype(np.float16)
    x = rng.normal(size=(windows, dim)).astype(np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        enrollment.add("new", x)
        enrollment.head(negatives)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_embed_and_fit(bundle_dir: Path, esc10: Path, repeats: int = 3) -> tuple[float, float, int]:
    """Median (embedding seconds, fit seconds, windows) for 30 s of audio through the bundle."""
    import soundfile

    from audeep_edge.audio import read_audio
    from audeep_edge.pipeline.embed import embed_audio

    bundle = load_bundle(bundle_dir)
    clips = sorted(next(d for d in sorted(esc10.iterdir()) if d.is_dir()).glob("*.ogg"))[:6]
    parts = [read_audio(c) for c in clips]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "thirty-seconds.wav"
        soundfile.write(str(path), np.concatenate([p[0] for p in parts]), parts[0][1])
        embed_times, fit_times = [], []
        for _ in range(repeats):
            audio = embed_audio(bundle, files=[path])
            enrollment = Enrollment(tmp, bundle.manifest["sha256"], bundle.embedding_size)
            started = time.perf_counter()
            enrollment.add("thirty", audio.embeddings)
            enrollment.head()
            fit_times.append(time.perf_counter() - started)
            embed_times.append(audio.embed_seconds)
    return statistics.median(embed_times), statistics.median(fit_times), len(audio.embeddings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    esc10_embeddings.add_arguments(parser)
    parser.add_argument("--draws", type=int, default=10, help="random choices of the k clips per fold")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the logistic-regression references")
    args = parser.parse_args()
    data = esc10_embeddings.load(args)
    print(f"embeddings: {data.source}: {data.x.shape[0]} windows x {data.x.shape[1]}, {len(data.classes)} classes")

    acc = closed_set(data, args.draws, not args.no_sklearn)
    print(f"\nclosed set, 10 classes enrolled; accuracy on the test fold, mean ± std over 5 folds x {args.draws} draws")
    print("| method | " + " | ".join(f"k={k}" for k in SHOTS) + " | all (~32) |")
    print("|---|" + "---|" * (len(SHOTS) + 1))
    for name, by_k in acc.items():
        cells = [f"{np.mean(by_k[k]):.3f} ± {np.std(by_k[k]):.3f}" if k in by_k else "" for k in (*SHOTS, 32)]
        print(f"| {name} | " + " | ".join(cells) + " |")

    accept = load_bundle(args.bundle).accept_similarity if args.bundle else None
    rates = open_set(data, max(1, args.draws // 2), accept)
    print("\nopen set, one class enrolled: accepted share of its test clips / of the 9 other classes' clips")
    print("| thresholds | " + " | ".join(f"k={k}" for k in SHOTS) + " |")
    print("|---|" + "---|" * len(SHOTS))
    for mode, label in (("baseline", f"per class, {FALSE_ACCEPT:.0%} of the baseline"),
                        ("no baseline", f"fixed cosine {ACCEPT_SIMILARITY}" if accept is None
                         else f"the bundle's cosine {accept:.3f}")):
        cells = [f"{np.mean(rates[mode, k][0]):.2f} / {np.mean(rates[mode, k][1]):.3f}" for k in SHOTS]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| ROC AUC of the similarity | " + " | ".join(f"{np.mean(rates['baseline', k][2]):.3f}" for k in SHOTS)
          + " |")

    if not args.no_sklearn:
        combined = trained_plus_enrolled(data, args.draws)
        print("\n9-class trained head (logistic regression) + the 10th class enrolled (baseline: the 9 classes' "
              "training clips), combined as `listen` does")
        print("| k | 10-class accuracy | enrolled class recall | 9 trained classes accuracy |")
        print("|---|---|---|---|")
        for k in (0, *SHOTS):
            a = np.array(combined[k])
            print(f"| {k or 'none (9-class head alone)'} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | "
                  f"{a[:, 2].mean():.3f} |")

    print(f"\nenrolment fit (30 windows x {data.x.shape[1]}, 10 classes, 300-window baseline): "
          f"{time_fit(data.x.shape[1]) * 1e3:.2f} ms median")
    if args.bundle is not None:
        if args.esc10 is None or not args.esc10.is_dir():
            sys.exit("error: timing --bundle needs --esc10 DIR, the ESC-10 directory")
        embed_s, fit_s, windows = time_embed_and_fit(args.bundle, args.esc10)
        print(f"30 s of audio through {args.bundle}: embedding {embed_s:.2f} s ({windows} windows) + fit "
              f"{fit_s * 1e3:.2f} ms = {embed_s + fit_s:.2f} s (median of 3)")


if __name__ == "__main__":
    main()
