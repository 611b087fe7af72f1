"""What event clips cost: the pipeline thread's time per block (``ClipSaver.push``), the writer thread's time to
encode and write one clip, and the clip's size, per format and source rate/channels. Prints one row per case.

    .venv/bin/python benchmarks/clips_bench.py [--audio FILE] [--seconds-per-clip 9]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from audeep_edge.audio import read_audio, resample
from audeep_edge.pipeline.clips import ClipSaver, ClipSettings

DEMO = Path(__file__).resolve().parents[1] / "audeep_edge" / "assets" / "demo-scenes.ogg"


def run(audio: np.ndarray, fs: int, fmt: str, clip_s: float) -> dict:
    """Stream ``audio`` [shape=(n, channels)] in 0.1 s blocks as fast as possible, one watched-label clip of
    ``clip_s`` s per ``clip_s`` s; return the median push time per block, the wall time per clip (the writer
    thread is the bottleneck, so this is its encode + write time) and the median clip size."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        settings = ClipSettings(Path(directory), watch=("x",), min_score=0.5, format=fmt, pre_roll=2.0,
                                post_roll=2.0, max_bytes=10**12)
        saver = ClipSaver(settings, device_id="bench", sample_rate=fs, window_seconds=clip_s - 4.0)
        block, pushes, clips = fs // 10, [], []
        for i, start in enumerate(range(0, len(audio) - block + 1, block)):
            t0 = time.perf_counter()
            saver.push(audio[start:start + block])
            pushes.append(time.perf_counter() - t0)
            end = (start + block) / fs
            hit = int(end * 10) % int(clip_s * 10) == 0
            saver.observe({"seq": i, "audio_time": end, "wall_time": time.time(),
                           "top_k": [{"label": "x", "p": 1.0 if hit else 0.0}]}, [])
            clips += saver.ready()
        clips += saver.close()
        sizes = [path.stat().st_size for path in Path(directory).iterdir()]
        return {"push_us": 1e6 * float(np.median(pushes)), "kb": float(np.median(sizes)) / 1e3,
                "write_ms": 1e3 * (time.perf_counter() - started) / len(clips)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=DEMO)
    parser.add_argument("--seconds-per-clip", type=float, default=9.0)
    args = parser.parse_args()
    x, fs = read_audio(args.audio)
    mono = x.mean(axis=1)
    print(f"{'format':6}  {'rate':>6}  {'ch':>2}  {'push us/block':>13}  {'clip kB':>7}  {'encode+write ms/clip':>20}")
    for fmt in ("ogg", "flac"):
        for rate, channels in ((16000, 1), (48000, 2)):
            audio = np.repeat(resample(mono, fs, rate)[:, None], channels, axis=1)
            row = run(audio, rate, fmt, args.seconds_per_clip)
            print(f"{fmt:6}  {rate:>6}  {channels:>2}  {row['push_us']:>13.1f}  {row['kb']:>7.1f}  "
                  f"{row['write_ms']:>20.1f}")


if __name__ == "__main__":
    main()
