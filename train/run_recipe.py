#!/usr/bin/env python3
"""Reproduce auDeep's sample recipes end to end and print a table of per-setting and fused accuracy.

    python train/run_recipe.py esc10 --data ESC-10 --out runs/esc10

Steps per spectrogram setting: preprocess -> t-rae train -> t-rae generate -> mlp evaluate; then fuse all
settings and evaluate the fused representation. Every step is an ``audeep-edge`` command (printed before it
runs), so a recipe is also a worked example of the CLI. Finished steps are skipped when re-run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MLP = ["--num-epochs", "400", "--learning-rate", "0.001", "--keep-prob", "0.6",
       "--num-layers", "2", "--num-units", "150", "--repeat", "5"]


@dataclass(frozen=True)
class Recipe:
    """One data set's settings, as auDeep's samples/*.sh (docs/audeep.md#sample-recipes)."""

    name: str
    preprocess: list[str]
    variants: dict[str, list[str]]  # suffix -> extra preprocess options
    autoencoder: list[str]
    epochs: int
    batch_size: int
    evaluate: list[str] = field(default_factory=lambda: ["--cross-validate"])
    add_cv_setup: int | None = None


AE_COMMON = ["--num-layers", "2", "--num-units", "256", "--cell", "GRU", "--learning-rate", "0.001",
             "--keep-prob", "0.8"]
CLIPS = {str(c): ["--clip-below", str(c)] for c in (-30, -45, -60, -75)}

RECIPES = {
    "esc10": Recipe("esc-10", ["--window-width", "0.08", "--window-overlap", "0.04", "--mel-spectrum", "128",
                               "--fixed-length", "5", "--center-fixed"], CLIPS,
                    AE_COMMON + ["--bidirectional-decoder"], epochs=64, batch_size=64),
    "esc50": Recipe("esc-50", ["--window-width", "0.08", "--window-overlap", "0.04", "--mel-spectrum", "128",
                               "--fixed-length", "5", "--center-fixed"], CLIPS,
                    AE_COMMON + ["--bidirectional-encoder"], epochs=64, batch_size=64),
    "gtzan": Recipe("gtzan", ["--window-width", "0.08", "--window-overlap", "0.04", "--mel-spectrum", "320",
                              "--fixed-length", "31", "--chunk-count", "15", "--chunk-length", "2"],
                    {**CLIPS, "-1000": ["--clip-below", "-1000"]},
                    AE_COMMON + ["--bidirectional-encoder"], epochs=40, batch_size=512,
                    evaluate=["--cross-validate", "--majority-vote"], add_cv_setup=5),
    "tut2017": Recipe("tut-as-2017", ["--window-width", "0.16", "--window-overlap", "0.08", "--mel-spectrum", "320"],
                      {f"-{c.lower()}": ["--channels", c] for c in ("MEAN", "DIFF", "LEFT", "RIGHT")},
                      AE_COMMON + ["--bidirectional-decoder"], epochs=40, batch_size=512),
}


def run(cmd: list[str], log: Path) -> str:
    """Run one audeep-edge command, echo it, append its output to ``log``; exit on failure."""
    print("$", shlex.join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    with log.open("a") as f:
        f.write(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        sys.exit(f"error: step failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}); see {log}")
    return proc.stdout


def repeat_statistics(result: dict, metric: str) -> tuple[float, float]:
    """Mean and population std (in %) over repeats of the per-repeat mean over folds."""
    per_repeat: dict[int, list[float]] = {}
    for split in result["splits"]:
        per_repeat.setdefault(split["repeat"], []).append(split[metric])
    means = [sum(v) / len(v) for v in per_repeat.values()]
    return 100 * statistics.mean(means), 100 * statistics.pstdev(means)


def evaluate(exe: list[str], reps: Path, recipe: Recipe, log: Path) -> dict:
    out = reps.with_name(reps.stem + "-mlp.json")
    if not out.exists():
        run(exe + ["mlp", "evaluate", "--input", str(reps), *recipe.evaluate, *MLP, "--output-json", str(out)], log)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--data", type=Path, required=True, help="data set base directory")
    parser.add_argument("--out", type=Path, required=True, help="work directory for spectrograms, runs, results")
    parser.add_argument("--epochs", type=int, help="override the recipe's autoencoder epochs")
    parser.add_argument("--jobs", type=int, default=2, help="parallel spectrogram extraction")
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    if not args.data.is_dir():
        sys.exit(f"error: data directory {args.data} does not exist; get the {recipe.name} data set first "
                 f"(see train/README.md)")
    exe = [str(Path(sys.executable).with_name("audeep-edge"))]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "recipe.log"
    started = time.time()
    rows, fused_inputs = [], []
    for suffix, options in recipe.variants.items():
        tag = f"{recipe.name}-{'-'.join(recipe.preprocess[1:6:2])}{suffix}"
        spectrograms = args.out / "spectrograms" / f"{tag}.nc"
        run_dir = args.out / "runs" / tag
        reps = run_dir / "representations.nc"
        if not spectrograms.exists():
            spectrograms.parent.mkdir(parents=True, exist_ok=True)
            run(exe + ["preprocess", "--basedir", str(args.data), "--output", str(spectrograms),
                       "--jobs", str(args.jobs), *recipe.preprocess, *options], log)
            if recipe.add_cv_setup:
                run(exe + ["modify", "--input", str(spectrograms), "--output", str(spectrograms),
                           "--add-cv-setup", str(recipe.add_cv_setup)], log)
        if not (run_dir / "autoencoder.weights.h5").exists():
            run(exe + ["t-rae", "train", "--input", str(spectrograms), "--run-name", str(run_dir),
                       "--num-epochs", str(args.epochs or recipe.epochs), "--batch-size", str(recipe.batch_size),
                       *recipe.autoencoder] + (["--continue"] if (run_dir / "config.json").exists() else []), log)
        if not reps.exists():
            run(exe + ["t-rae", "generate", "--model-dir", str(run_dir), "--input", str(spectrograms),
                       "--output", str(reps)], log)
        rows.append((tag, evaluate(exe, reps, recipe, log)))
        fused_inputs.append(str(reps))
    fused = args.out / "runs" / f"{recipe.name}-fused" / "representations.nc"
    if not fused.exists():
        fused.parent.mkdir(parents=True, exist_ok=True)
        run(exe + ["fuse", "--input", *fused_inputs, "--output", str(fused)], log)
    rows.append((f"{recipe.name}-fused", evaluate(exe, fused, recipe, log)))
    print(f"\n{'setting':<40} {'accuracy (mean ± std over repeats)':>34} {'UAR':>16}")
    for tag, r in rows:
        acc, acc_std = repeat_statistics(r, "accuracy")
        uar, uar_std = repeat_statistics(r, "uar")
        print(f"{tag:<40} {acc:6.2f} ± {acc_std:5.2f} % {uar:6.2f} ± {uar_std:5.2f} %")
    print(f"total time: {time.time() - started:.0f} s")
    (args.out / "results.json").write_text(json.dumps({t: r for t, r in rows}, indent=2))


if __name__ == "__main__":
    main()
