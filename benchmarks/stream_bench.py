"""Streaming runtime figures for docs/streaming.md: ``audeep-edge bench`` on every bundle here, delegate
none vs xnnpack, 1 vs 2 threads; the naive baseline once per bundle (same audio, same run).

    .venv/bin/python benchmarks/stream_bench.py [--seconds 60] [--bundle DIR ...] [--baseline-model PATH]

Default bundles: the tiny test bundles (baseline: tests/data/tiny.keras) and every audeep_edge/assets/*.bundle
(baseline: the bundle's training run, when it is on this machine). Each figure comes from a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("audeep-edge"))


def bench(bundle: Path, *options: str) -> dict:
    done = subprocess.run([CLI, "-q", "bench", "--bundle", str(bundle), "--json", *options],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bundle", type=Path, action="append")
    parser.add_argument("--baseline-model", type=Path)
    args = parser.parse_args()
    bundles = args.bundle or [ROOT / "tests/data/tiny.bundle", ROOT / "tests/data/tiny-int8.bundle",
                              *sorted((ROOT / "audeep_edge/assets").glob("*.bundle"))]
    seconds = ["--seconds", str(args.seconds)]
    print(f"{'bundle':<26} {'prec':<8} {'delegate':<8} {'thr':>3} {'RTF':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU %':>6} {'RSS MB':>7} {'TF':>3} {'naive RTF':>9} {'speed-up':>8}")
    for bundle in bundles:
        model = args.baseline_model or (ROOT / "tests/data/tiny.keras" if bundle.parent.name == "data" else None)
        baseline = ["--baseline-model", str(model)] if model else []
        for delegate, threads, with_baseline in (("none", 1, True), ("xnnpack", 1, False), ("none", 2, False)):
            options = [*seconds, "--delegate", delegate, "--threads", str(threads)]
            r = bench(bundle, *options, *(baseline if with_baseline else ["--no-baseline"]))
            base = r.get("baseline")
            naive = (f"{base['rtf']:>9.4f} {r['speedup']:>7.1f}x" if isinstance(base, dict)
                     else f"{'-':>9} {'-':>8}")
            print(f"{r['bundle']:<26} {r['precision']:<8} {r['delegate']:<8} {threads:>3} {r['rtf']:>8.5f} "
                  f"{r['latency_ms_p50']:>7.2f} {r['latency_ms_p99']:>7.2f} {r['cpu_pct']:>6.2f} "
                  f"{r['peak_rss_mb']:>7.1f} {'yes' if r['tensorflow_imported'] else 'no':>3} {naive}", flush=True)


if __name__ == "__main__":
    main()
