"""ESC-10 clip embeddings for the adaptation benchmarks (novelty_eval.py, enroll_eval.py).

Two sources, same result (one embedding per window, its class and its fold 1-5):

* ``--representations runs/esc10-60/representations.nc``: an auDeep-compatible file written by
  ``audeep-edge t-rae generate`` (needs the train extra to read netCDF);
* ``--bundle B --esc10 ESC-10``: every clip of the ESC-10 directory (``NNN - Class/F-ID-T.ogg``, required with
  ``--bundle``) streamed through the bundle's model exactly as on the device (``audeep-edge enroll`` and
  ``baseline fit`` use the same path); cached in ``--cache`` (.npz).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

FOLD = re.compile(r"^([1-5])-")


@dataclass(frozen=True)
class Embeddings:
    """x (N, D) float32; labels (N,) str; folds (N,) int 1..5; clips (N,) clip file names; source (text)."""

    x: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    clips: np.ndarray
    source: str

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    @property
    def recordings(self) -> np.ndarray:
        """(N,) the Freesound recording each clip was cut from (``<fold>-<recording>-<take>.ogg``): clips of one
        recording are alike, so calibration folds keep them together."""
        return np.array([Path(c).name.split("-")[1] for c in self.clips])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embeddings (one of)")
    group.add_argument("--representations", type=Path, help="auDeep representations .nc of ESC-10")
    group.add_argument("--bundle", type=Path, help="model bundle: stream the ESC-10 clips through it")
    parser.add_argument("--esc10", type=Path, metavar="DIR",
                        help="ESC-10 directory ('NNN - Class/F-ID-T.ogg'); required with --bundle")
    parser.add_argument("--cache", type=Path, help="with --bundle: .npz to store/reuse the embeddings")


def fail(message: str) -> NoReturn:
    """One ``error:`` line on stderr, exit status 2 (as the CLI and argparse)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load(args: argparse.Namespace) -> Embeddings:
    if args.representations is not None:
        return from_representations(args.representations)
    if args.bundle is not None:
        if args.esc10 is None:
            fail("--bundle needs --esc10 DIR, the ESC-10 directory whose clips it embeds")
        if not args.esc10.is_dir():
            fail(f"--esc10 {args.esc10}: not a directory")
        return from_bundle(args.bundle, args.esc10, args.cache)
    fail("pass --representations FILE.nc or --bundle DIR --esc10 DIR (see --help)")


def _fold(name: str) -> int:
    match = FOLD.match(Path(name).name)
    if not match:
        raise SystemExit(f"{name}: not an ESC clip name '<fold>-<id>-<take>.ogg'")
    return int(match.group(1))


def from_representations(path: Path) -> Embeddings:
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(path)
    x = ds.features.reshape(ds.num_instances, -1).astype(np.float32)
    if ds.num_folds == 5 and ds.has_cv_info:
        folds = np.argmax(ds.cv_folds == 1, axis=1) + 1
    else:
        folds = np.array([_fold(f) for f in ds.filenames])
    return Embeddings(x=x, labels=np.asarray(ds.label_nominal, dtype=str), folds=folds,
                      clips=np.asarray(ds.filenames, dtype=str), source=str(path))


def from_bundle(bundle_dir: Path, esc10: Path, cache: Path | None) -> Embeddings:
    from audeep_edge.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if str(data["sha256"]) == bundle.manifest["sha256"]:
            return Embeddings(x=data["x"], labels=data["labels"], folds=data["folds"], clips=data["clips"],
                              source=f"{bundle_dir} (cached in {cache})")
    from audeep_edge.pipeline.embed import embed_audio

    clips = sorted(p for d in sorted(esc10.iterdir()) if d.is_dir() for p in sorted(d.glob("*.ogg")))
    if not clips:
        fail(f"--esc10 {esc10}: no ESC clips ('NNN - Class/F-ID-T.ogg')")
    started = time.perf_counter()
    audio = embed_audio(bundle, files=clips)
    print(f"embedded {len(clips)} clips ({len(audio.embeddings)} windows) in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    labels = np.array([clips[g].parent.name[6:] for g in audio.groups])
    result = Embeddings(x=audio.embeddings, labels=labels, folds=np.array([_fold(clips[g].name) for g in audio.groups]),
                        clips=np.array([clips[g].name for g in audio.groups]), source=str(bundle_dir))
    if cache is not None:
        np.savez(cache, x=result.x, labels=result.labels, folds=result.folds, clips=result.clips,
                 sha256=np.array(bundle.manifest["sha256"]))
    return result


def roc_auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half): the ROC AUC."""
    scores = np.concatenate([negative, positive])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = positive.size, negative.size
    return float((ranks[negative.size:].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
