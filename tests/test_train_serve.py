"""Train/serve parity through the whole chain: what `listen` publishes is what `t-rae generate` writes.

A tiny t-RAE run on 0.84 s segments of the committed ESC-10 clips (random weights: the chain is deterministic,
so no training is needed) -> `quantize --precision float32` -> `listen --file` on the segments played back to
back, one window per segment -> each window's embedding vs Keras' `generate` on that segment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import cli, untrained_run
from stream_testing import cosine, read_jsonl, run_cli

from audeep_edge.audio import mix, read_audio
from audeep_edge.features.offline import fix_length

pytest.importorskip("tensorflow")
ESC_MINI = Path(__file__).parent / "data" / "esc_mini"
T, F, SECONDS = 20, 16, 0.84            # 0.84 s at 44.1 kHz, 80 ms windows, 40 ms hop: 20 frames


def test_listen_publishes_the_embeddings_that_generate_writes(tmp_path):
    from audeep_edge.dataset import load_dataset

    segments = tmp_path / "segments"
    segments.mkdir()
    pieces = []
    for clip in sorted(ESC_MINI.rglob("*.ogg"))[::2]:
        samples, fs = read_audio(clip)
        piece = fix_length(mix(samples, "MEAN"), int(SECONDS * fs), center=True)
        # not digital silence: streamed, its first sample would carry the pre-emphasis of the previous segment
        if np.abs(piece).max() > 0.01 and len(pieces) < 4:
            soundfile.write(str(segments / f"{len(pieces)}.wav"), piece, fs, subtype="FLOAT")
            pieces.append(piece)
    soundfile.write(str(tmp_path / "stream.wav"), np.concatenate(pieces), fs, subtype="FLOAT")

    nc = tmp_path / "segments.nc"
    code, _, err = cli(None, "preprocess", "--basedir", segments, "--parser", "no-metadata", "--output", nc,
                       "--mel-spectrum", F, "--window-width", 0.08, "--window-overlap", 0.04, "--clip-below", -60)
    assert code == 0, err
    assert load_dataset(nc).features.shape[1:] == (T, F)
    run = untrained_run(tmp_path / "run", nc, num_layers=2, seed=11)

    bundle = tmp_path / "tiny.bundle"
    code, _, err = cli(None, "quantize", run, "--precision", "float32", "--output", bundle)
    assert code == 0, err
    code, _, err = cli(None, "t-rae", "generate", "--model-dir", run, "--input", segments, "--parser", "no-metadata",
                       "--output", tmp_path / "generated.nc")
    assert code == 0, err
    generated = load_dataset(tmp_path / "generated.nc")
    offline = dict(zip((Path(name).stem for name in generated.filenames), generated.features))

    done = run_cli("listen", "--file", tmp_path / "stream.wav", "--bundle", bundle, "--broker", "none",
                   "--jsonl", "-", "--hop", SECONDS, "--embeddings", "float32", "--embedding-encoding", "json")
    assert done.returncode == 0, done.stderr
    windows = read_jsonl(done.stdout)["window"]
    assert [w["seq"] for w in windows] == [0, 1, 2, 3]
    for w in windows:
        assert cosine(np.array(w["embedding"]), offline[str(w["seq"])]) >= 0.9999
