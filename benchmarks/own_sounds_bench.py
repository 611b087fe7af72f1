"""The ``audeep-edge train`` path a new user takes, timed: class folders -> train -> config check -> listen --file.

From an ESC-10 copy (``NNN - Class/F-ID-T.ogg``) it builds, under ``--out``, ``own/<label>/`` with two clips of
each of folds 1-4 per class (8 per class), ``held/`` with every fold-5 clip of those classes and, for
``--unlabelled``, ``unlabelled/`` with six clips of each other class. Then, with the installed CLI:

    audeep-edge train own --output own.bundle [--unlabelled unlabelled]
    audeep-edge config check own.toml --bundle own.bundle
    audeep-edge listen --bundle own.bundle --file held/<clip> --broker none --jsonl -     (each held-out clip)

and prints the CV accuracy ``train`` printed, the held-out accuracy of ``listen`` and the wall times.

    .venv/bin/python benchmarks/own_sounds_bench.py --esc10 DIR --out /tmp/own-bench [--unlabelled]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

CLASSES = {"dog": "001 - Dog bark", "rain": "002 - Rain", "rooster": "009 - Rooster"}
CLI = str(Path(sys.executable).with_name("audeep-edge"))


def build(esc10: Path, out: Path) -> None:
    """own/<label>/ (8 clips: 2 of each of folds 1-4), held/ (fold 5), unlabelled/ (6 of each other class)."""
    shutil.rmtree(out, ignore_errors=True)
    for label, folder in CLASSES.items():
        clips = sorted((esc10 / folder).glob("*.ogg"))
        (out / "own" / label).mkdir(parents=True)
        (out / "held").mkdir(exist_ok=True)
        for fold in "1234":
            for clip in [c for c in clips if c.name.startswith(f"{fold}-")][:2]:
                shutil.copy(clip, out / "own" / label / clip.name)
        for clip in [c for c in clips if c.name.startswith("5-")]:
            shutil.copy(clip, out / "held" / f"{label}-{clip.name}")
    (out / "unlabelled").mkdir()
    for folder in sorted(d for d in esc10.iterdir() if d.is_dir() and d.name not in CLASSES.values()):
        for clip in sorted(folder.glob("*.ogg"))[:6]:
            shutil.copy(clip, out / "unlabelled" / clip.name)


def run(*args: str, cwd: Path) -> str:
    done = subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: audeep-edge {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--esc10", type=Path, required=True, help="ESC-10 in its original layout")
    parser.add_argument("--out", type=Path, required=True, help="scratch directory (replaced)")
    parser.add_argument("--unlabelled", action="store_true", help="also train an encoder on unlabelled clips")
    args = parser.parse_args(argv)
    if not args.esc10.is_dir():
        sys.exit(f"error: --esc10 {args.esc10}: no such directory")
    build(args.esc10, args.out)
    started = time.perf_counter()
    extra = ["--unlabelled", "unlabelled"] if args.unlabelled else []
    out = run("train", "own", "--output", "own.bundle", "--data-license", "CC BY 3.0 (ESC-10)", *extra, cwd=args.out)
    trained = time.perf_counter()
    print(out)
    (args.out / "own.toml").write_text('broker = "none"\n')
    print(run("config", "check", "own.toml", "--bundle", "own.bundle", cwd=args.out).strip())
    held = sorted((args.out / "held").iterdir())
    right = 0
    for clip in held:
        windows = [json.loads(line) for line in run("-q", "listen", "--bundle", "own.bundle", "--file", str(clip),
                                                    "--broker", "none", "--jsonl", "-", cwd=args.out).splitlines()]
        labels = [w["label"] for w in windows if w.get("topic") == "window"]
        right += labels[0] == clip.name.split("-")[0]
    done = time.perf_counter()
    cv = re.search(r"cross-validated accuracy: ([\d.]+) %", out).group(1)
    print(f"CV accuracy {cv} %; listen on {len(held)} held-out clips: {right}/{len(held)} "
          f"({100 * right / len(held):.1f} %); train {trained - started:.1f} s, whole path {done - started:.1f} s")


if __name__ == "__main__":
    main()
