"""``audeep-edge bench``: each measurement runs in a fresh process, so peak RSS is the runtime's own.

``python -m audeep_edge.commands.bench_worker runtime ...`` streams the audio through the real pipeline
(``Pipeline`` with the bundle's encoder and a JSONL sink writing to /dev/null) and never imports TensorFlow;
``... baseline ...`` runs the naive approach (per hop: ``scipy.signal.spectrogram`` of the whole window,
then ``keras.Model.predict``) and is the only place TensorFlow is loaded. Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from audeep_edge.errors import AudeepError, ConfigError

BLOCK_SECONDS = 0.1


def bench_audio(bundle, seconds: float, path: Path | None) -> np.ndarray:
    """``seconds`` of mono audio at the bundle's rate [shape=(n,), float32]: ``path`` (default: the bundled
    demo audio; noise if there is none) mixed as the bundle says, resampled beforehand (a microphone can
    capture at the model's rate) and looped."""
    from audeep_edge.audio import StreamingResampler, mix, read_audio
    from audeep_edge.pipeline.assemble import ASSETS

    path = path or ASSETS / "demo-scenes.ogg"
    fs = bundle.geometry.fs
    if path.is_file():
        samples, file_fs = read_audio(path)
        x = mix(samples, bundle.frontend.channels)
        if file_fs != fs:  # block by block: one push of a long file needs GBs of index arrays
            resampler, step = StreamingResampler(file_fs, fs), file_fs
            x = np.concatenate([*(resampler.push(x[i:i + step]) for i in range(0, x.size, step)), resampler.flush()])
    else:
        x = 0.1 * np.random.default_rng(0).standard_normal(10 * fs)
    n = int(seconds * fs)
    return np.tile(x, -(-n // x.size))[:n].astype(np.float32)


class MemorySource:
    """Audio from memory in ``BLOCK_SECONDS`` blocks, as fast as the pipeline takes them."""

    name, overruns, queue_depth, channels = "bench audio", 0, 0, 1

    def __init__(self, samples: np.ndarray, sample_rate: int) -> None:
        self.samples, self.sample_rate = samples, sample_rate

    def blocks(self, stop: threading.Event) -> Iterator:
        from audeep_edge.sources import AudioBlock

        step = int(BLOCK_SECONDS * self.sample_rate)
        for i in range(0, self.samples.size, step):
            if stop.is_set():
                return
            yield AudioBlock(self.samples[i:i + step, None], time.monotonic())


def measure_runtime(args: argparse.Namespace) -> dict:
    from audeep_edge.config import ListenConfig
    from audeep_edge.pipeline.assemble import assemble
    from audeep_edge.pipeline.health import percentile_ms
    from audeep_edge.sinks.jsonl import JsonlSink

    cfg = ListenConfig(bundle=Path(args.bundle), threads=args.threads, delegate=args.delegate, hop=args.hop,
                       broker="none", health_interval=3600.0)
    run = assemble(cfg)
    bundle, audio = run.bundle, np.load(args.audio)
    sink = JsonlSink(os.devnull)
    pipeline = run.pipeline(MemorySource(audio, bundle.geometry.fs), [sink])
    cpu0 = time.process_time()
    summary = pipeline.run()
    cpu = time.process_time() - cpu0
    sink.close()
    return {"bundle": bundle.name, "precision": bundle.precision, "delegate": run.encoder.delegate,
            "threads": cfg.threads, "windows": summary.windows, "audio_s": round(summary.audio_seconds, 3),
            "rtf": summary.rtf, "latency_ms_p50": percentile_ms(summary.latencies, 50),
            "latency_ms_p99": percentile_ms(summary.latencies, 99),
            "cpu_pct": round(100.0 * cpu / summary.audio_seconds, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules}


def load_baseline_model(path: Path):
    """A ``.keras`` file, or a training run directory (its encoder)."""
    import keras

    if path.is_dir():
        from audeep_edge.training.runs import load_encoder

        return load_encoder(path)
    return keras.models.load_model(path, compile=False)


def measure_baseline(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from scipy.signal import get_window, spectrogram

    from audeep_edge.bundle import load_bundle
    from audeep_edge.features import encoder_input, mel_filterbank
    from audeep_edge.head import top_k
    from audeep_edge.pipeline.health import percentile_ms
    from audeep_edge.sinks.payload import to_json

    bundle = load_bundle(Path(args.bundle))
    model = load_baseline_model(Path(args.model))
    fe, g = bundle.frontend, bundle.geometry
    audio = np.load(args.audio).astype(np.float64)
    window = get_window("hann", g.n_fft, fftbins=True)
    fbank = mel_filterbank(fs=g.fs, n_fft=g.n_fft, n_mels=fe.mel_bands) if fe.mel_bands else None
    span, step = bundle.window_samples, bundle.window_hop(args.hop).frames * g.hop
    latencies = []
    with open(os.devnull, "w") as devnull:
        for start in range(0, audio.size - span + 1, step):
            t0 = time.perf_counter()
            x = audio[start:start + span]
            x = np.append(x[0], x[1:] - fe.pre_emphasis * x[:-1])
            _, _, magnitude = spectrogram(x, g.fs, window=window, noverlap=g.overlap, mode="magnitude")
            power = (magnitude**2 / g.n_fft).T
            features = encoder_input(power @ fbank.T if fbank is not None else power, bundle.normalization,
                                     fe.clip_below, fe.clip_above)
            out = model.predict(features[None], verbose=0)
            probabilities = out.get("probabilities") if isinstance(out, dict) else None
            result = {"top_k": top_k(probabilities[0], bundle.labels, 3)} if probabilities is not None else {}
            devnull.write(to_json(result) + "\n")
            latencies.append(time.perf_counter() - t0)
    return {"bundle": bundle.name, "windows": len(latencies), "rtf": sum(latencies) / (audio.size / g.fs),
            "latency_ms_p50": percentile_ms(latencies, 50), "latency_ms_p99": percentile_ms(latencies, 99),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _worker(kind: str, bundle: Path, audio: Path, *, threads: int, delegate: str, hop: float | None,
            model: Path | None = None) -> dict:
    command = [sys.executable, "-m", __name__, kind, "--bundle", str(bundle), "--audio", str(audio),
               "--threads", str(threads), "--delegate", delegate]
    for option, value in (("--hop", hop), ("--model", model)):
        if value is not None:
            command += [option, str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise AudeepError(f"bench {kind} for {bundle} failed: {lines[-1] if lines else 'no output'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_baseline_model(bundle_path: Path) -> Path | None:
    """The bundle's training run directory when it is on this machine (as recorded, or next to the bundle)."""
    from audeep_edge.pipeline.assemble import find_bundle

    bundle = find_bundle(bundle_path)
    run = bundle.manifest.get("training", {}).get("run")
    candidates = [Path(run), bundle.path.parent / run] if run else []
    return next((path for path in candidates if path.is_dir()), None)


def run_bench(bundles: list[Path], *, seconds: float, audio: Path | None, threads: int, delegate: str,
              hop: float | None, baseline: bool, baseline_model: Path | None) -> list[dict]:
    """Runtime (and baseline) figures per bundle, measured one process at a time."""
    if audio is not None and not audio.is_file():
        raise ConfigError(f"--file {audio}: no such audio file")
    from audeep_edge.pipeline.assemble import find_bundle

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for bundle in bundles:
            samples = Path(tmp) / "audio.npy"
            np.save(samples, bench_audio(find_bundle(bundle), seconds, audio))
            result = _worker("runtime", bundle, samples, threads=threads, delegate=delegate, hop=hop)
            model = baseline_model or default_baseline_model(bundle)
            if baseline and model is None:
                result["baseline"] = "skipped: no Keras model (pass --baseline-model)"
            elif baseline:
                base = _worker("baseline", bundle, samples, threads=threads, delegate=delegate, hop=hop, model=model)
                result["baseline"] = base
                result["speedup"] = round(base["rtf"] / result["rtf"], 1)
            results.append(result)
    return results


def print_results(results: list[dict], as_json: bool) -> None:
    if as_json:
        for result in results:
            print(json.dumps(result))
        return
    print(f"{'bundle':<24} {'precision':<9} {'windows':>7} {'RTF':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU %':>6} "
          f"{'RSS MB':>7} {'TF':>3} | {'naive RTF':>9} {'p50 ms':>7} {'speed-up':>8}")
    for r in results:
        base = r.get("baseline")
        tail = (f"{base['rtf']:>9.4f} {base['latency_ms_p50']:>7.1f} {r['speedup']:>7.1f}x" if isinstance(base, dict)
                else f"  {base or 'not run'}")
        print(f"{r['bundle']:<24} {r['precision']:<9} {r['windows']:>7} {r['rtf']:>8.5f} {r['latency_ms_p50']:>7.2f} "
              f"{r['latency_ms_p99']:>7.2f} {r['cpu_pct']:>6.2f} {r['peak_rss_mb']:>7.1f} "
              f"{'yes' if r['tensorflow_imported'] else 'no':>3} | {tail}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_worker")
    parser.add_argument("kind", choices=("runtime", "baseline"))
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--audio", required=True, help=".npy of mono float32 samples at the bundle's rate")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--delegate", default="auto")
    parser.add_argument("--hop", type=float)
    parser.add_argument("--model")
    args = parser.parse_args()
    try:
        result = measure_runtime(args) if args.kind == "runtime" else measure_baseline(args)
    except AudeepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
