"""Per precision: model size, conversion time, per-window latency, embedding cosine vs Keras, accuracy vs float.

Two modes:

    # a trained run: one bundle per precision written by `quantize` (MLP head of fold 1 attached, parity and
    # end-to-end accuracy on the validation split of fold 1), plus 5-fold accuracy of a float MLP head on the
    # quantized encoder's embeddings vs on the Keras encoder's:
    python benchmarks/quantize_bench.py --run runs/esc10/runs/esc-10-0.08-0.04-128-60 \\
        --spectrograms runs/esc10/spectrograms/esc-10-0.08-0.04-128-60.nc --out /tmp/qbench/esc10
    # no run: a randomly initialised 2x256 GRU t-RAE encoder (bidirectional decoder, D=1024) at 124 x 128,
    # calibrated and compared on real ESC-10 windows from --esc10 (size, latency, cosine):
    python benchmarks/quantize_bench.py --esc10 ESC-10 --out /tmp/qbench/random

Latency: median and p99 of one window through the runtime's ``Encoder`` (ai-edge-litert) with ``--delegate``
auto at 1 and 2 threads, and xnnpack and none at 1 thread; all models are timed round-robin in one loop, so
that machine load affects them alike.
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
#: (column, threads, delegate) of the runtime's Encoder: ``auto`` is what `listen` uses by default (LiteRT's
#: CompiledModel with a shared weight cache where ``shares_packed_weights``, the classic interpreter otherwise).
LATENCY_SETTINGS = (("1 thr auto", 1, "auto"), ("2 thr auto", 2, "auto"), ("1 thr xnnpack", 1, "xnnpack"),
                    ("1 thr none", 1, "none"))


def latencies_ms(models: dict[str, bytes], repeats: int) -> dict[str, dict[str, tuple[float, float]]]:
    """``{precision: {setting: (median, p99)}}`` of one window through the runtime's ``Encoder``, timed
    round-robin over all models and settings, so that machine load affects them alike."""
    from audeep_edge.encoder import Encoder

    folder = Path(tempfile.mkdtemp(prefix="qbench-models-"))
    encoders = {}
    for precision, model in models.items():
        path = folder / f"{precision}.tflite"
        path.write_bytes(model)
        for setting, threads, delegate in LATENCY_SETTINGS:
            encoder = Encoder(path, threads=threads, delegate=delegate)
            x = np.zeros(encoder.input_shape[1:], np.float32)
            for _ in range(5):
                encoder(x)
            encoders[precision, setting] = (encoder, x)
    times = {key: [] for key in encoders}
    for _ in range(repeats):
        for key, (encoder, x) in encoders.items():
            start = time.perf_counter()
            encoder(x)
            times[key].append(1000 * (time.perf_counter() - start))
    result: dict[str, dict] = {}
    for (precision, setting), values in times.items():
        result.setdefault(precision, {})[setting] = (float(np.median(values)), float(np.percentile(values, 99)))
    return result


def esc10_windows(esc10: Path, count: int) -> np.ndarray:
    """ESC-10 clips through the recipe's front end (0.08 s / 0.04 s, 128 mel, -60 dB, 5 s): (count, 124, 128)."""
    from audeep_edge.audio import read_audio
    from audeep_edge.features import FrontendConfig, extract

    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, clip_below=-60, fixed_length=5.0,
                         center_fixed=True)
    files = sorted(esc10.rglob("*.ogg"))
    chosen = np.random.default_rng(0).permutation(len(files))[:count]
    return np.stack([extract(*read_audio(files[i]), cfg).chunks[0] for i in chosen])


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the converter runs in a child), in seconds."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def flatbuffer_stats(model: bytes) -> dict[str, int]:
    """Where the bytes of a .tflite go: total, tensor names, constant data; tensor and op counts."""
    from audeep_edge.training.quantize.flatbuffer import read_model

    m = read_model(model)
    tensors = [t for g in m.subgraphs for t in g.tensors]
    return {"bytes": len(model), "name_bytes": sum(len(t.name or b"") for t in tensors),
            "constant_bytes": sum(0 if b.data is None else len(b.data) for b in m.buffers),
            "tensors": len(tensors), "ops": sum(len(g.operators) for g in m.subgraphs)}


def random_init(args) -> dict[str, dict]:
    """Convert a random-init encoder at every precision; parity on ESC-10 windows; size breakdown."""
    from audeep_edge.training.autoencoders import TimeAutoencoderConfig, build_autoencoder, encoder_model
    from audeep_edge.training.quantize.bundle_writer import finish_model
    from audeep_edge.training.quantize.convert import convert_in_child
    from audeep_edge.training.quantize.graph import deployable_model, export_saved_model
    from audeep_edge.training.quantize.parity import TfliteSignature, parity

    config = TimeAutoencoderConfig(num_layers=2, num_units=256, bidirectional_decoder=True)
    trained = build_autoencoder(config, (124, 128))
    unrolled = build_autoencoder(config, (124, 128), unroll=True)
    unrolled.set_weights(trained.get_weights())
    reference = deployable_model(encoder_model(trained))
    graph_unrolled = deployable_model(encoder_model(unrolled))
    windows = esc10_windows(args.esc10, args.calibration + args.windows)
    calibration, held_out = windows[:args.calibration], windows[args.calibration:]
    expected = {k: np.asarray(v) for k, v in reference.predict(held_out, verbose=0).items()}
    export_saved_model(reference, args.out / "saved-while")
    export_saved_model(graph_unrolled, args.out / "saved-unrolled")
    rows = {}
    for precision in args.precisions:
        integer = precision in ("int8", "edgetpu")
        started, cpu = time.perf_counter(), cpu_seconds()
        raw = convert_in_child(args.out / ("saved-unrolled" if integer else "saved-while"), precision,
                               calibration if integer else None)
        model = finish_model(raw, precision)
        rows[precision] = {"model": model, "conversion_seconds": time.perf_counter() - started,
                           "conversion_cpu_seconds": cpu_seconds() - cpu,
                           "converter_output": flatbuffer_stats(raw), "bundle_model": flatbuffer_stats(model),
                           **parity(expected, TfliteSignature(model).predict(held_out))}
        print(f"{precision}: converted", file=sys.stderr, flush=True)
    return rows


def fold_heads(features: np.ndarray, labels: np.ndarray, cv_folds: np.ndarray, num_classes: int) -> list:
    """One MLP head (auDeep's settings) per fold, trained on that fold's TRAIN split of ``features``."""
    from audeep_edge.training.evaluation import cross_validation_splits
    from audeep_edge.training.learners import MLP

    return [MLP(seed=1).fit(features[split.train], labels[split.train], num_classes).head
            for split in cross_validation_splits(cv_folds)]


def cv_accuracy(heads: list, features: np.ndarray, labels: np.ndarray, cv_folds: np.ndarray) -> float:
    """Accuracy over all folds' VALID splits, each predicted by its own fold's head."""
    from audeep_edge.training.evaluation import cross_validation_splits

    hits = total = 0
    for head, split in zip(heads, cross_validation_splits(cv_folds)):
        predicted = np.asarray(head.predict(features[split.evaluate], verbose=0)).argmax(axis=1)
        hits += int(np.sum(predicted == labels[split.evaluate]))
        total += int(split.evaluate.sum())
    return hits / total


def from_run(args) -> dict[str, dict]:
    """One bundle per precision with quantize_run (head of fold 1 attached) + 5-fold accuracy of the encoder."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.training.heads import save_head
    from audeep_edge.training.quantize.bundler import QuantizeOptions, quantize_run
    from audeep_edge.training.quantize.parity import TfliteSignature
    from audeep_edge.training.runs import load_encoder

    ds = load_dataset(args.spectrograms)
    names = sorted(ds.label_map, key=ds.label_map.get)
    labels = np.asarray([ds.label_map[str(x)] for x in ds.label_nominal])
    embeddings = np.asarray(load_encoder(args.run).predict(ds.features, verbose=0, batch_size=32)["embedding"])
    heads = fold_heads(embeddings, labels, ds.cv_folds, len(names))
    float_accuracy = cv_accuracy(heads, embeddings, labels, ds.cv_folds)
    head_dir = save_head(args.out / "head-fold1", heads[0], names, {"dataset": args.spectrograms.name,
                                                                     "trained_on": "fold 1 TRAIN split"})
    rows = {}
    for precision in args.precisions:
        bundle = args.out / f"{precision}.bundle"
        cpu = cpu_seconds()
        report = quantize_run(QuantizeOptions(run_dir=args.run, precision=precision, output=bundle,
                                              head_dir=head_dir, calibration=args.spectrograms,
                                              eval_data=args.spectrograms, eval_fold=1,
                                              calibration_windows=args.calibration))
        model = (bundle / "model.tflite").read_bytes()
        quantized = TfliteSignature(model).predict(ds.features)["embedding"]
        rows[precision] = {"model": model, **report, "quantize_cpu_seconds": cpu_seconds() - cpu,
                           "cv_accuracy_float": float_accuracy,
                           "cv_accuracy_quantized": cv_accuracy(heads, quantized, labels, ds.cv_folds)}
        print(f"{precision}: converted", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="training run directory (default: random-init encoder)")
    parser.add_argument("--spectrograms", type=Path, help="the run's labelled spectrogram .nc (with --run)")
    parser.add_argument("--esc10", type=Path, metavar="DIR",
                        help="ESC-10 directory whose clips calibrate and test the random-init encoder (without --run)")
    parser.add_argument("--calibration", type=int, default=100, help="calibration windows")
    parser.add_argument("--windows", type=int, default=50, help="held-out windows (random-init mode)")
    parser.add_argument("--repeats", type=int, default=200, help="timed invocations per latency figure")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--out", type=Path, default=None, help="where bundles and results.json go")
    args = parser.parse_args()
    if args.run and not args.spectrograms:
        parser.error("--run needs --spectrograms")
    if not args.run and args.esc10 is None:
        parser.error("without --run, --esc10 DIR is required (the ESC-10 clips that calibrate the random-init encoder)")
    if not args.run and not any(args.esc10.rglob("*.ogg")):
        parser.error(f"--esc10 {args.esc10}: no ESC-10 clips (*.ogg) there")
    args.out = args.out or Path(tempfile.mkdtemp(prefix="qbench-"))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = from_run(args) if args.run else random_init(args)

    models = {precision: row.pop("model") for precision, row in rows.items()}
    latency = latencies_ms(models, args.repeats)
    float_size = len(models["float32"]) if "float32" in models else None
    header = ["precision", "size MB", "x fp32", "convert s", *(f"{s} ms p50/p99" for s, _, _ in LATENCY_SETTINGS),
              "cosine mean/min", "5-fold acc. quant. (float)", "fold-1 acc. quant. (float)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for precision, row in rows.items():
        size = len(models[precision])
        emb, classes = row["embedding"], row.get("classes", {})
        cv = (f"{100 * row['cv_accuracy_quantized']:.2f}% ({100 * row['cv_accuracy_float']:.2f}%)"
              if "cv_accuracy_float" in row else "-")
        fold = (f"{100 * classes['accuracy_quantized']:.1f}% ({100 * classes['accuracy_float']:.1f}%)"
                if "accuracy_float" in classes else "-")
        timing = [f"{latency[precision][s][0]:.2f} / {latency[precision][s][1]:.2f}" for s, _, _ in LATENCY_SETTINGS]
        cells = [precision, f"{size / 1e6:.3f}", f"{size / float_size:.3f}" if float_size else "-",
                 f"{row['conversion_seconds']:.1f}", *timing,
                 f"{emb['cosine_mean']:.5f} / {emb['cosine_min']:.5f}", cv, fold]
        print("| " + " | ".join(cells) + " |")
        row.update(bytes=size, latency_ms=latency[precision])
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, default=str))
    print(f"results in {args.out / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
