"""Recipe of `general-trae-dynamic.bundle`: auDeep's t-RAE (the `esc10-dynamic` architecture and front end)
trained without labels on the ~7.8 h corpus of the codebook recipe, then an ESC-10 head on folds 1-4.

Steps (times on the 2-core x86 CPU of docs/generalisation.md):

    # 0. the corpus: step 1 of train/codebook_recipe.py (~3 min)
    # 1. the autoencoder, 12,000 random corpus windows x 8 epochs (~4-6 min per epoch on JAX, resumable)
    KERAS_BACKEND=jax python train/corpus_trae_recipe.py encoder --corpus runs/general/corpus --out runs/trae
    #    resumed to 16 epochs (8 more: ~35-60 min) it is where step 1' starts; general-trae-dynamic is the run at
    #    8 epochs (steps 2 and 3 below)
    KERAS_BACKEND=jax python train/corpus_trae_recipe.py encoder --corpus runs/general/corpus --out runs/trae \\
        --epochs 16
    #    more corpora: repeat --corpus with one --windows count each (tried: + 6,000 windows of a GPL-2+ speech
    #    corpus for 6 more epochs, 41 min; no gain beside the codebook, docs/generalisation.md)
    # 1'. the t-RAE trained on for its pooled representation: auDeep's reconstruction plus agreement between two
    #     augmented views of each window (training/autoencoders/agreement.py), 12 x 150 batches of 64 pairs from
    #     the 16-epoch run (~5 min per epoch on JAX, 1 h, resumable); the default bundle's t-RAE (step 3' of
    #     codebook_recipe.py with --trae-run runs/trae-agree/run)
    KERAS_BACKEND=jax python train/corpus_trae_recipe.py agree --trae runs/trae --out runs/trae-agree
    # 2. the encoder bundle (TensorFlow's converter; ~1 min)
    python train/corpus_trae_recipe.py bundle --out runs/trae
    # 3. the head on ESC-10 folds 1-4 (fold 5 is the demo audio), ~1.5 min
    audeep-edge train ESC-10-FOLDS-1-4 --bundle runs/trae/corpus-trae-dynamic.bundle \\
        --output audeep_edge/assets/general-trae-dynamic.bundle --data-name "ESC-10 folds 1-4" --data-license "CC BY 3.0"

Neither ESC-10 nor the spoken digits of the transfer benchmark are in the corpus: the encoder never hears them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from audeep_edge.bundle import load_bundle
from audeep_edge.errors import AudeepError
from audeep_edge.features.normalize import window_features
from audeep_edge.own_sounds.encoder import quantize_encoder, train_autoencoder_run
from audeep_edge.pipeline.assemble import ASSETS, AUTOENCODER_BUNDLE
from audeep_edge.training.corpus import Corpus

log = logging.getLogger("corpus_trae_recipe")
WINDOWS_FILE = "corpus-windows.npy"
WINDOW_SEED = 7  # which corpus windows are drawn
MIN_RANGE_DB = 20.0  # windows with less dynamic range than this are silence or hum: left out
CORPUS_LICENSE = "CC BY-SA 3.0"


def corpus_windows(corpus: Corpus, count: int, seed: int = WINDOW_SEED) -> np.ndarray:
    """(count, T, F) random corpus windows as the t-RAE reads them: auDeep's per-window dB, clipped at the
    bundle's ``clip_below``, scaled to [-1, 1] (``window_features``)."""
    base = load_bundle(ASSETS / AUTOENCODER_BUNDLE)
    rng = np.random.default_rng(seed)
    raw = next(corpus.batches(int(count * 1.25), base.window_frames, rng)).astype(np.float32)
    raw = raw[raw.max(axis=(1, 2)) - raw.min(axis=(1, 2)) > MIN_RANGE_DB][:count]
    clip = base.frontend.clip_below
    return np.stack([window_features(10.0 ** (w / 10.0), clip) for w in raw])


def windows_cache(out: Path, index: int) -> Path:
    """Where the windows of the ``index``-th ``--corpus`` are kept (the first keeps the original name)."""
    return out / (WINDOWS_FILE if index == 0 else WINDOWS_FILE.replace(".npy", f"-{index + 1}.npy"))


def cmd_encoder(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    parts = []
    for index, (directory, count) in enumerate(zip(args.corpus, args.windows)):
        cache = windows_cache(args.out, index)
        if cache.is_file():
            parts.append(np.load(cache))
        else:
            parts.append(corpus_windows(Corpus(directory), count))
            np.save(cache, parts[-1])
        log.info("%s: %d windows", directory, len(parts[-1]))
    windows = np.concatenate(parts)
    names = [f"corpus-{i}" for i in range(len(windows))]
    train_autoencoder_run(load_bundle(ASSETS / AUTOENCODER_BUNDLE), windows, names, args.out / "run",
                          epochs=args.epochs, seed=args.seed)


def cmd_agree(args: argparse.Namespace) -> None:
    from audeep_edge.training import runs
    from audeep_edge.training.trainer import AgreementOptions, TrainingOptions, train_agreement
    from audeep_edge.training.views import ViewSettings

    start = args.trae / "run"
    caches = [windows_cache(args.trae, 0)]
    while windows_cache(args.trae, len(caches)).is_file():
        caches.append(windows_cache(args.trae, len(caches)))
    parts = [np.load(path, mmap_mode="r") for path in caches]
    windows = parts[0] if len(parts) == 1 else np.concatenate(parts)      # one corpus stays memory-mapped
    clip = runs.read_run_config(start)["frontend"]["clip_below"]
    run = args.out / "run"
    report = train_agreement(
        windows, start, run,
        TrainingOptions(batch_size=64, num_epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed),
        AgreementOptions(weight=args.weight, steps_per_epoch=args.steps, views=ViewSettings(range_db=-float(clip))),
        resume=(run / runs.CONFIG_FILE).is_file(), verbose=2)
    log.info("%s: %d epochs in %.0f s", run, len(report.epochs), report.wall_time_s)


def cmd_bundle(args: argparse.Namespace) -> None:
    report = quantize_encoder(args.out / "run", args.out / "corpus-trae-dynamic.bundle", "dynamic", hop_seconds=1.0,
                              data_name=args.data_name, data_license=CORPUS_LICENSE)
    log.info("encoder bundle: %d bytes, cosine to Keras %.5f", report["model_bytes"],
             report["embedding"]["cosine_mean"])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("encoder", help="train the t-RAE on corpus windows (resumes)")
    p.add_argument("--corpus", type=Path, action="append", required=True,
                   help="a corpus directory; repeat to add corpora (windows of each are drawn apart)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--windows", type=int, action="append",
                   help="random windows drawn from each --corpus, in order (default 12,000 from each)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=1, help="training seed")
    p.set_defaults(run=cmd_encoder)
    p = sub.add_parser("agree", help="train a t-RAE run on with agreement between augmented views (resumes)")
    p.add_argument("--trae", type=Path, required=True, help="the encoder step's --out (its run/ and windows)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--steps", type=int, default=150, help="batches of 64 view pairs per epoch")
    p.add_argument("--weight", type=float, default=0.05, help="of the agreement loss beside auDeep's RMSE")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=1, help="training and view seed")
    p.set_defaults(run=cmd_agree)
    p = sub.add_parser("bundle", help="the trained encoder as a dynamic-range bundle (no head)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-name", default="7.76 h Debian corpus (unlabelled)")
    p.set_defaults(run=cmd_bundle)
    args = parser.parse_args()
    if args.step == "agree" and not ((args.trae / "run").is_dir() and windows_cache(args.trae, 0).is_file()):
        parser.error(f"--trae {args.trae}: not the --out of the encoder step (no run/ and {WINDOWS_FILE})")
    if args.step == "encoder":
        args.windows = args.windows or [12_000] * len(args.corpus)
        if len(args.windows) != len(args.corpus):
            parser.error(f"{len(args.windows)} --windows for {len(args.corpus)} --corpus: give one count per corpus")
        for directory in args.corpus:
            if not directory.is_dir():
                parser.error(f"--corpus {directory}: not a corpus directory (train/codebook_recipe.py corpus)")
    try:
        args.run(args)
    except AudeepError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
