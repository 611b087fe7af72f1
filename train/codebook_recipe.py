"""Recipe of the `general` bundles: a codebook encoder learned without labels from ~7.8 h of permissively
licensed audio, a linear head on ESC-10, converted to dynamic / int8 / float32; and of the default
`general-fused-dynamic`: the same codebook with the corpus t-RAE (train/corpus_trae_recipe.py) beside it.

Steps (times on the 2-core x86 CPU of docs/generalisation.md):

    # 1. unlabelled corpus: Debian packages' sounds (see train/README.md for how to get them; ~3 min)
    python train/codebook_recipe.py corpus --out runs/general/corpus \\
        --source "0ad-data audio (CC BY-SA 3.0)=DIR" --source "megaglest-data (CC BY-SA 3.0)=DIR" ...
    # 2. codebook (~1 min)
    python train/codebook_recipe.py codebook --corpus runs/general/corpus --out runs/general/codebook.npz
    # 3. head on a labelled ESC-layout set (folds 1-4; fold 5 measures it) and the bundles (~1 min each)
    python train/codebook_recipe.py bundle --codebook runs/general/codebook.npz --corpus runs/general/corpus \\
        --labelled ESC-10 --out audeep_edge/assets --name general --precision dynamic int8 float32
    # 3'. the default: the same with the corpus t-RAE of train/corpus_trae_recipe.py (16 epochs, then 12 of
    #     agreement between views: its `agree` step) beside it, its representation averaged and maximised over the
    #     window (--trae-pooling, default mean max; ~3 min)
    python train/codebook_recipe.py bundle --codebook runs/general/codebook.npz --corpus runs/general/corpus \\
        --trae-run runs/trae-agree/run --labelled ESC-10 --out audeep_edge/assets --name general-fused \\
        --precision dynamic int8

Neither the evaluation sets of the transfer benchmark (ESC-10, spoken digits) nor any labelled data is in the
corpus: the encoder never hears them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audeep_edge.dataset.folds import labelled_clips
from audeep_edge.errors import AudeepError
from audeep_edge.features import FrontendConfig, WindowFraming, encoder_input
from audeep_edge.pipeline.windows import source_windows
from audeep_edge.training.codebook import Codebook, CodebookSettings, train_codebook
from audeep_edge.training.corpus import Corpus, audio_files, build_corpus
from audeep_edge.training.fused import POOLING, TRAE_POOLING

if TYPE_CHECKING:
    from audeep_edge.training.quantize.codebook_bundle import DbEncoder

log = logging.getLogger("codebook_recipe")
HOP_SECONDS = 1.0  # between windows, as the bundles stream


def clip_windows(framing: WindowFraming, path: Path, encoder: DbEncoder) -> np.ndarray:
    """(W, T, F') encoder inputs of a clip's windows, as the device computes them (``source_windows``, at the
    framing's hop; ``encoder_input``): a clip shorter than a window and a frame (every 5 s ESC clip) is
    zero-padded to that, centred, as ``enroll`` pads it."""
    return np.stack([encoder_input(w.power, encoder.normalization, encoder.clip_below)
                     for w in source_windows(framing, path)])


def labelled_windows(root: Path, spec: FrontendConfig, window_frames: int, encoder: DbEncoder):
    """Encoder inputs (N, T, F'), labels (N,), folds (N,) of a labelled data set with cross-validation folds."""
    framing = WindowFraming(frontend=spec, geometry=spec.geometry(spec.sample_rate), window_frames=window_frames,
                            hop_seconds=HOP_SECONDS)
    data = labelled_clips(root, max_folds=5)
    windows, labels, folds = [], [], []
    for path, label, fold in zip(data.paths, np.array(data.names)[data.labels], data.folds + 1):
        w = clip_windows(framing, path, encoder)
        windows.append(w)
        labels += [label] * len(w)
        folds += [fold] * len(w)
    return np.concatenate(windows), np.array(labels), np.array(folds)


def cmd_corpus(args: argparse.Namespace) -> None:
    sources = {}
    for item in args.source:
        name, _, directory = item.rpartition("=")
        if not name or not Path(directory).is_dir():
            sys.exit(f"error: --source {item!r}: expected 'NAME (LICENCE)=DIRECTORY'")
        sources[name] = audio_files([Path(directory)])
    build_corpus(sources, args.out, workers=args.workers)


def cmd_codebook(args: argparse.Namespace) -> None:
    settings = CodebookSettings(patch_frames=args.patch_frames, centroids=args.centroids, whitened=args.whitened,
                                seed=args.seed)
    codebook = train_codebook(Corpus(args.corpus), settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    codebook.save(args.out)
    args.out.with_suffix(".json").write_text(json.dumps(settings.__dict__, indent=1))


def fused_encoder(codebook: Codebook, run_dir: Path, corpus: Corpus, stat_windows: int, pooling: tuple[str, ...]):
    """The codebook with the t-RAE of ``run_dir`` pooled as ``pooling`` says beside it, its t-RAE parts standardised
    and every part partially whitened on ``stat_windows`` corpus windows."""
    from audeep_edge.training.fused import FusedEncoder
    from audeep_edge.training.quantize import gru_graph
    from audeep_edge.training.runs import read_run_config

    frontend = read_run_config(run_dir).get("frontend") or {}
    fields = ("sample_rate", "window_width", "window_overlap", "mel_bands", "pre_emphasis", "channels")
    if any(frontend.get(name) != getattr(corpus.frontend, name) for name in fields) or "clip_below" not in frontend:
        sys.exit(f"error: --trae-run {run_dir}: its front end differs from the corpus's; train it on this corpus")
    encoder = FusedEncoder(codebook, run_dir, clip_below=frontend["clip_below"], pooling=pooling)
    if not gru_graph.supports(encoder.autoencoder):
        sys.exit(f"error: --trae-run {run_dir}: not a t-RAE with GRU cells, which the fused graph needs")
    db = next(corpus.batches(stat_windows, encoder.autoencoder.spectrogram_shape[0], np.random.default_rng(11)))
    encoder.standardise(encoder.inputs(db))
    return encoder


def trae_description(run: Path) -> str:
    """How a t-RAE run was trained, for the bundle's record: its epochs, after those of the run it started from."""
    from audeep_edge.training.runs import read_run_config

    training = read_run_config(run)["training"]
    described = f"{training['num_epochs']} epochs"
    if "agreement" in training:
        described = (f"{read_run_config(training['start'])['training']['num_epochs']} epochs + {described} of "
                     "agreement between views")
    return f"t-RAE of {described}"


def cmd_bundle(args: argparse.Namespace) -> None:
    from audeep_edge.training.quantize.bundler import format_report, use_tensorflow_backend
    from audeep_edge.head.enroll import FALSE_ACCEPT
    from audeep_edge.own_sounds.head import fit_head
    from audeep_edge.training.quantize.codebook_bundle import build_bundle

    use_tensorflow_backend()
    codebook = Codebook.load(args.codebook)
    corpus = Corpus(args.corpus)
    spec = corpus.frontend
    encoder = (codebook if args.trae_run is None
               else fused_encoder(codebook, args.trae_run, corpus, 4000, tuple(args.trae_pooling)))
    windows, labels, folds = labelled_windows(args.labelled, spec, args.window_frames, encoder)
    x = encoder.embed(windows)
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    scores = []
    for fold in np.unique(folds):
        head = fit_head(x[folds != fold], y[folds != fold], len(names), args.c)
        scores.append(np.mean(head.probabilities(x[folds == fold]).argmax(1) == y[folds == fold]))
    print(f"linear head, {len(scores)}-fold CV on {args.labelled.name} windows: {100 * np.mean(scores):.2f} % "
          f"(folds {', '.join(f'{100 * s:.1f}' for s in scores)})")
    train, check = folds != args.eval_fold, folds == args.eval_fold
    head = fit_head(x[train], y[train], len(names), args.c)
    calibration = encoder.inputs(next(corpus.batches(args.calibration_windows, args.window_frames,
                                                     np.random.default_rng(7))))
    sources = sorted({f["source"] for f in corpus.index["files"]})
    encoder_name, run = "codebook", args.codebook.name
    if args.trae_run is not None:
        encoder_name = "codebook + t-RAE (auDeep) side by side"
        run += f" + {trae_description(args.trae_run)} ({', '.join(args.trae_pooling)} over the window)"
    training = {"dataset": f"encoder: {corpus.hours:.2f} h unlabelled (" + "; ".join(sources)
                           + f"); head: {args.labelled.name} folds != {args.eval_fold}",
                "license": args.license, "encoder": encoder_name, "run": run,
                "head": f"linear (softmax regression, C={args.c:g})",
                "accuracy_data": f"{args.labelled.name} fold {args.eval_fold} ({int(check.sum())} windows)"}
    for precision in args.precision:
        report = build_bundle(encoder, head, names, spec=spec, window_frames=args.window_frames, precision=precision,
                              calibration=calibration, check=windows[check], check_labels=labels[check],
                              output=args.out / f"{args.name}-{precision}.bundle", name=f"{args.name}-{precision}",
                              training=training, enrol=(windows[train], y[train]))
        print(format_report(report))
        print(f"enrolment without a baseline: a class of 5 clips accepts from cosine "
              f"{report['accept_similarity']:.3f} ({100 * FALSE_ACCEPT:g} % of the other classes' training windows)")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("corpus", help="frames of unlabelled audio folders into a memory-mapped corpus")
    p.add_argument("--source", action="append", required=True, help="'NAME (LICENCE)=DIRECTORY' (repeatable)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(run=cmd_corpus)
    p = sub.add_parser("codebook", help="learn the codebook encoder from a corpus")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--patch-frames", type=int, default=8)
    p.add_argument("--centroids", type=int, default=512)
    p.add_argument("--whitened", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(run=cmd_codebook)
    p = sub.add_parser("bundle", help="fit a linear head on a labelled set and write bundles")
    p.add_argument("--codebook", type=Path, required=True)
    p.add_argument("--corpus", type=Path, required=True, help="the codebook's corpus (front end, int8 calibration)")
    p.add_argument("--labelled", type=Path, required=True, help="labelled data set with folds (ESC layout)")
    p.add_argument("--trae-run", type=Path, help="a t-RAE run trained on the corpus, fused beside the codebook")
    p.add_argument("--trae-pooling", nargs="+", choices=POOLING, default=list(TRAE_POOLING),
                   help="the t-RAE's parts: its representation after every frame averaged (mean) or maximised (max) "
                        "over the window, or auDeep's after the last frame (final)")
    p.add_argument("--license", default="CC BY-SA 3.0 (encoder corpus); CC BY 3.0 (ESC-10 head)")
    p.add_argument("--eval-fold", type=int, default=5)
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the softmax regression")
    p.add_argument("--window-frames", type=int, default=124)
    p.add_argument("--calibration-windows", type=int, default=300)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", default="general")
    p.add_argument("--precision", nargs="+", default=["dynamic"])
    p.set_defaults(run=cmd_bundle)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except AudeepError as exc:  # a bad --trae-run, --codebook or data set: one line, no traceback
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
