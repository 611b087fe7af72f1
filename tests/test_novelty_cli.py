"""`audeep-edge baseline fit|show` on a real bundle and real audio, and the novelty score `listen` gets from it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from stream_testing import TINY, read_jsonl
from test_enroll_cli import one_error_line
from conftest import cli

from audeep_edge.bundle import load_bundle
from audeep_edge.pipeline.embed import embed_audio
from audeep_edge.errors import ModelError
from audeep_edge.head.adaptation import Adaptation
from audeep_edge.head.baseline import BASELINE_FILE, load_baseline
from audeep_edge.head.novelty import NoveltyConfig


@pytest.fixture
def bundle(tmp_path):
    return shutil.copytree(TINY, tmp_path / "tiny.bundle")


def test_fit_from_files_then_show_and_score(bundle, esc_mini, tone_wav, capsys):
    rain = sorted((esc_mini / "002 - Rain").glob("*.ogg"))
    code, out, err = cli(capsys, "baseline", "fit", "--bundle", bundle, "--file", *rain)
    assert code == 0, err
    assert "lof on 55 windows" in out  # 5 clips x 11 windows (1 s windows every 0.4 s)
    baseline = load_baseline(bundle / BASELINE_FILE)
    assert baseline.meta["windows"] == 55 and baseline.meta["model_sha256"] == load_bundle(bundle).manifest["sha256"]

    code, out, _ = cli(capsys, "baseline", "show", "--bundle", bundle)
    assert code == 0 and "matches the model    yes" in out and "55" in out

    b = load_bundle(bundle)
    head = Adaptation(bundle, b.manifest["sha256"], b.embedding_size,
                      events=NoveltyConfig(threshold=0.9, release=0.5, min_duration=0.0))
    beep = embed_audio(b, files=[tone_wav(seconds=2.0)]).embeddings
    scores = [head.novelty(e) for e in beep]
    assert all(0.0 <= s <= 1.0 for s in scores) and np.mean(scores) > 0.9  # a tone is new to a rain baseline
    assert head.event(0.0, scores[0]).state == "start"


def test_gmm_method(bundle, esc_mini, capsys):
    clips = sorted(esc_mini.glob("*/*.ogg"))[:4]
    code, out, err = cli(capsys, "baseline", "fit", "--bundle", bundle, "--method", "gmm", "--file", *clips)
    assert code == 0, err
    assert load_baseline(bundle / BASELINE_FILE).method == "gmm"


def test_listen_refuses_a_baseline_of_another_model(bundle, esc_mini, capsys):
    assert cli(capsys, "baseline", "fit", "--bundle", bundle, "--file", *sorted(esc_mini.glob("*/*.ogg"))[:2])[0] == 0
    b = load_bundle(bundle)
    with pytest.raises(ModelError, match="another model"):
        Adaptation(bundle, "0" * 64, b.embedding_size)


@pytest.mark.parametrize("args, needles", [
    ([], ["no audio"]),
    (["--method", "svm", "--seconds", "5"], ["--method", "lof, knn, gmm"]),
    (["--file", "nowhere.ogg"], ["nowhere.ogg"]),
])
def test_user_errors_are_one_line_and_exit_2(bundle, capsys, args, needles):
    one_error_line(*cli(capsys, "baseline", "fit", "--bundle", bundle, *args)[::2], *needles)
    assert not (bundle / BASELINE_FILE).exists()


def test_too_little_or_corrupt_audio(bundle, tone_wav, tmp_path, capsys):
    short = tone_wav("short.wav", seconds=2.0)  # 3 windows
    one_error_line(*cli(capsys, "baseline", "fit", "--bundle", bundle, "--file", short)[::2], "at least 10")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    one_error_line(*cli(capsys, "baseline", "fit", "--bundle", bundle, "--file", corrupt)[::2], "corrupt.wav")
    one_error_line(*cli(capsys, "baseline", "show", "--bundle", bundle)[::2], "baseline fit")


def test_listen_publishes_the_novelty_score_once_a_baseline_exists(bundle, esc_mini, tone_wav, capsys):
    rain = sorted((esc_mini / "002 - Rain").glob("*.ogg"))
    assert cli(capsys, "baseline", "fit", "--bundle", bundle, "--file", *rain)[0] == 0
    code, out, err = cli(capsys, "listen", "--bundle", bundle, "--file", rain[0], "--broker", "none", "--jsonl", "-",
                         "--novelty-min-duration", "0")
    assert code == 0, err
    scores = [w["novelty"] for w in read_jsonl(out)["window"]]
    assert len(scores) == 11 and all(0.0 <= s <= 1.0 for s in scores)
