"""Per precision: model size, conversion time, per-window latency, embedding cosine vs Keras, accuracy vs float.

Two modes:

    # a trained run (bundles written with `quantize`, parity on a labelled CV fold):
    python benchmarks/quantize_bench.py --run runs/esc10 --head runs/esc10/head \\
        --eval-data esc10.nc --eval-fold 1 --out /tmp/qbench
    # no run: a randomly initialised 2x256 GRU t-RAE encoder (bidirectional decoder, D=1024) at 124 x 128,
    # calibrated and compared on real ESC-10 windows from ../shared/data/esc10 (sizes and latency only):
    python benchmarks/quantize_bench.py --out /tmp/qbench

Latency: median and p99 of single-window invocations through the signature runner (ai-edge-litert),
1 and 2 threads with the default XNNPACK delegate, and 1 thread with default delegates off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PRECISIONS = ("float32", "float16", "dynamic", "int8", "edgetpu")
ESC10 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "esc10"


def latency_ms(model: bytes, threads: int, delegates: bool, repeats: int) -> tuple[float, float]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    runner = interpreter.get_signature_runner("serving_default")
    spec = runner.get_input_details()["spectrogram"]
    x = np.zeros(spec["shape"], spec["dtype"])
    for _ in range(10):
        runner(spectrogram=x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(spectrogram=x)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times)), float(np.percentile(times, 99))


def esc10_windows(count: int) -> np.ndarray:
    """ESC-10 clips through the recipe's front end (0.08 s / 0.04 s, 128 mel, -60 dB, 5 s): (count, 124, 128)."""
    from audeep_edge.audio import read_audio
    from audeep_edge.features import FrontendConfig, extract

    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-60, fixed_length=5.0,
                         center_fixed=True)
    files = sorted(ESC10.rglob("*.ogg"))
    if not files:
        sys.exit(f"no ESC-10 clips under {ESC10}")
    chosen = np.random.default_rng(0).permutation(len(files))[:count]
    return np.stack([extract(*read_audio(files[i]), cfg).chunks[0] for i in chosen])


def random_init(args, work: Path) -> dict[str, dict]:
    """Convert a random-init encoder at every precision; parity on ESC-10 windows."""
    from audeep_edge.training.autoencoders import TimeAutoencoderConfig, build_autoencoder, encoder_model
    from audeep_edge.training.quantize.bundler import convert_graph
    from audeep_edge.training.quantize.graph import deployable_model
    from audeep_edge.training.quantize.parity import TfliteSignature, parity

    config = TimeAutoencoderConfig(num_layers=2, num_units=256, bidirectional_decoder=True)
    trained = build_autoencoder(config, (124, 128))
    unrolled = build_autoencoder(config, (124, 128), unroll=True)
    unrolled.set_weights(trained.get_weights())
    reference = deployable_model(encoder_model(trained))
    graph_unrolled = deployable_model(encoder_model(unrolled))
    windows = esc10_windows(args.calibration + args.windows)
    calibration, held_out = windows[:args.calibration], windows[args.calibration:]
    expected = {k: np.asarray(v) for k, v in reference.predict(held_out, verbose=0).items()}
    rows = {}
    for precision in args.precisions:
        integer = precision in ("int8", "edgetpu")
        started = time.perf_counter()
        model = convert_graph(graph_unrolled if integer else reference, precision,
                              calibration if integer else None, work / precision)
        rows[precision] = {"model": model, "conversion_seconds": time.perf_counter() - started,
                           **parity(expected, TfliteSignature(model).predict(held_out))}
        print(f"{precision}: converted", file=sys.stderr, flush=True)
    return rows


def from_run(args, out: Path) -> dict[str, dict]:
    """Write one bundle per precision with quantize_run; read back its parity report."""
    from audeep_edge.training.quantize.bundler import QuantizeOptions, quantize_run

    rows = {}
    for precision in args.precisions:
        bundle = out / f"{precision}.bundle"
        report = quantize_run(QuantizeOptions(run_dir=args.run, precision=precision, output=bundle,
                                              head_dir=args.head, eval_data=args.eval_data, eval_fold=args.eval_fold,
                                              calibration=args.calibration_data,
                                              calibration_windows=args.calibration))
        rows[precision] = {"model": (bundle / "model.tflite").read_bytes(), **report}
        print(f"{precision}: converted", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--head", type=Path)
    parser.add_argument("--eval-data", type=Path)
    parser.add_argument("--eval-fold", type=int)
    parser.add_argument("--calibration-data", type=Path)
    parser.add_argument("--calibration", type=int, default=100, help="calibration windows")
    parser.add_argument("--windows", type=int, default=50, help="held-out windows (random-init mode)")
    parser.add_argument("--repeats", type=int, default=200, help="timed invocations per latency figure")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--out", type=Path, default=None, help="where bundles / results.json go")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="qbench-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = from_run(args, out) if args.run else random_init(args, out)

    float_size = len(rows["float32"]["model"]) if "float32" in rows else None
    header = ("precision", "size MB", "x fp32", "convert s", "1 thr ms (p50/p99)", "2 thr ms (p50/p99)",
              "1 thr no-XNNPACK ms", "cosine mean/min", "accuracy (float)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    results = {}
    for precision, row in rows.items():
        model = row.pop("model")
        one, two = latency_ms(model, 1, True, args.repeats), latency_ms(model, 2, True, args.repeats)
        plain = latency_ms(model, 1, False, args.repeats)
        classes = row.get("classes", {})
        acc = (f"{100 * classes['accuracy_quantized']:.1f}% ({100 * classes['accuracy_float']:.1f}%)"
               if "accuracy_float" in classes else "-")
        emb = row["embedding"]
        ratio = f"{len(model) / float_size:.3f}" if float_size else "-"
        print(f"| {precision} | {len(model) / 1e6:.3f} | {ratio} | "
              f"{row['conversion_seconds']:.1f} | {one[0]:.2f} / {one[1]:.2f} | {two[0]:.2f} / {two[1]:.2f} | "
              f"{plain[0]:.2f} / {plain[1]:.2f} | {emb['cosine_mean']:.5f} / {emb['cosine_min']:.5f} | {acc} |")
        results[precision] = {**row, "bytes": len(model), "latency_1t": one, "latency_2t": two,
                              "latency_1t_no_delegates": plain}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results in {out / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
