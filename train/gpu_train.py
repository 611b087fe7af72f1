"""Train auDeep's ESC-10 t-RAE on the GPU machine (Keras 3 on JAX; needs only keras, jax and numpy).

    KERAS_BACKEND=jax python train/gpu_train.py --data DIR --out OUTDIR [--epochs 64]

DIR holds one ``.npz`` per spectrogram setting, made here with
``python -m audeep_edge.training.gpu_pack --output DIR esc-10-*.nc`` (arrays ``features`` (N, T, F)
float16/32 and optionally ``frontend``, JSON text). For every ``DIR/NAME.npz`` the script trains the sample
recipe (2x256 GRU, unidirectional encoder, bidirectional decoder, batch 64, learning rate 0.001,
keep-prob 0.8; docs/audeep.md#sample-recipes) and writes the run directory ``OUTDIR/NAME/`` (``config.json``,
``autoencoder.weights.h5``, ``logs/history.csv``), which ``audeep_edge.training.runs.load_encoder`` loads
on any backend. ``OUTDIR/timings.json`` holds wall time, per-epoch seconds and examples/s per setting.
Epoch checkpoints are deleted at the end unless ``--keep-checkpoints`` (they are ~3x the weights).
``--snapshot-every N`` also writes ``OUTDIR/NAME/representations-eEPOCH.npz`` every N epochs (``features``
(instances, D) float32, ``filenames``), so one run measures several training lengths; turn a snapshot into a
representations data set here with ``python -m audeep_edge.training.gpu_pack --metadata NAME.nc``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

import keras  # noqa: E402
import numpy as np  # noqa: E402

from audeep_edge.training.autoencoders import TimeAutoencoderConfig  # noqa: E402
from audeep_edge.training.generate import generate_representations  # noqa: E402
from audeep_edge.training.trainer import TrainingOptions, TrainingReport, train_autoencoder  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the ESC-10 t-RAE recipe on every .npz in --data.")
    parser.add_argument("--data", required=True, type=Path, help="directory of .npz spectrogram files")
    parser.add_argument("--out", required=True, type=Path, help="output directory (one run per .npz)")
    parser.add_argument("--epochs", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--keep-prob", type=float, default=0.8)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--num-units", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N instances (smoke tests)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-checkpoints", action="store_true")
    parser.add_argument("--snapshot-every", type=int, default=None, metavar="N",
                        help="write the representations of all instances every N epochs and at the end")
    args = parser.parse_args(argv)
    if args.snapshot_every is not None and args.snapshot_every < 1:
        parser.error(f"--snapshot-every must be at least 1, got {args.snapshot_every}")
    return args


def device_description() -> str:
    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(str(d.device_kind) for d in jax.devices())
    return platform.processor() or platform.machine()


def stops(num_epochs: int, every: int | None) -> list[int]:
    """The epochs after which training pauses for a snapshot; the last is always ``num_epochs``."""
    if every is None:
        return [num_epochs]
    return sorted({*range(every, num_epochs, every), num_epochs})


def train_setting(features: np.ndarray, filenames: np.ndarray, run_dir: Path, config: TimeAutoencoderConfig,
                  options: TrainingOptions, frontend: dict | None, name: str,
                  every: int | None) -> TrainingReport:
    """Train one setting, pausing after every snapshot epoch (``--continue`` semantics) to encode all instances.

    Only the first part seeds the random generators, so a continuation does not replay its shuffles and masks.
    """
    total = TrainingReport(run_dir, features.shape[0], 0.0)
    for index, stop in enumerate(stops(options.num_epochs, every)):
        part = replace(options, num_epochs=stop, seed=None if index else options.seed)
        report = train_autoencoder(features, config, run_dir, part, resume=index > 0, frontend=frontend,
                                   inputs=[name], verbose=2)
        total.wall_time_s += report.wall_time_s
        total.epochs += report.epochs
        if every is not None:
            np.savez(run_dir / f"representations-e{stop:04d}.npz", filenames=filenames,
                     features=generate_representations(run_dir, features))
    return total


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s - %(message)s")
    files = sorted(args.data.glob("*.npz"))
    if not files:
        sys.exit(f"error: --data {args.data}: no .npz files (make them with audeep_edge.training.gpu_pack)")
    config = TimeAutoencoderConfig(num_layers=args.num_layers, num_units=args.num_units, cell="GRU",
                                   bidirectional_decoder=True, keep_prob=args.keep_prob)
    options = TrainingOptions(batch_size=args.batch_size, num_epochs=args.epochs, learning_rate=args.learning_rate,
                              checkpoints_to_keep=1, seed=args.seed)
    summary = {"backend": keras.backend.backend(), "keras": keras.__version__, "device": device_description(),
               "architecture": config.to_dict(), "training": vars(args) | {"data": str(args.data),
                                                                            "out": str(args.out)},
               "settings": {}}
    start = time.perf_counter()
    for path in files:
        with np.load(path) as data:
            features = data["features"][:args.limit].astype(np.float32)
            filenames = data["filenames"][:args.limit] if "filenames" in data.files else np.arange(len(features))
            frontend = json.loads(str(data["frontend"])) if "frontend" in data.files and str(data["frontend"]) else None
        run_dir = args.out / path.stem
        report = train_setting(features, filenames, run_dir, config, options, frontend, path.name,
                               args.snapshot_every)
        if not args.keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        summary["settings"][path.stem] = report.to_dict()
        summary["total_wall_time_s"] = time.perf_counter() - start
        summary["tensorflow_imported"] = "tensorflow" in sys.modules
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")   # after every setting
    print(json.dumps({name: {"wall_time_s": round(s["wall_time_s"], 1),
                             "steady_examples_per_s": s["steady_examples_per_s"],
                             "final_loss": s["epochs"][-1]["loss"] if s["epochs"] else None}
                      for name, s in summary["settings"].items()}, indent=2))


if __name__ == "__main__":
    main()
