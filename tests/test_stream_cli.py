"""`audeep-edge listen` end to end in a subprocess: streaming == offline, no TensorFlow, pipes, silence, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from stream_testing import (CLI, RAIN, TINY, assert_one_error_line, cosine, read_jsonl, real_clip, run_cli,
                            swapped_model_bundle)

from audeep_edge.audio import mix, read_audio, resample
from audeep_edge.bundle import load_bundle, sha256_of
from audeep_edge.encoder import Encoder
from audeep_edge.features import extract

JSONL_ONLY = ("--bundle", TINY, "--broker", "none", "--jsonl", "-")


@pytest.mark.parametrize("rate", [16000, 44100])
def test_streamed_embeddings_equal_the_offline_front_end_and_model(tmp_path, rate):
    """Each window of `listen --file` equals features.extract + the same model on that window's audio; at
    44.1 kHz the stream is resampled block by block to the bundle's 16 kHz."""
    if rate == 16000:
        x, path = real_clip(tmp_path / "rain.wav", 16000)
    else:
        samples, fs = read_audio(RAIN)
        x, path = resample(mix(samples, "MEAN"), fs, 16000), RAIN
    done = run_cli("listen", "--file", path, *JSONL_ONLY, "--embeddings", "float32", "--embedding-encoding", "json")
    assert done.returncode == 0, done.stderr
    windows = read_jsonl(done.stdout)["window"]
    bundle = load_bundle(TINY)
    g, encoder = bundle.geometry, Encoder(bundle.model_path)
    span, hop = 23 * g.hop + g.n_fft, 10 * g.hop
    assert [w["seq"] for w in windows] == list(range((x.size - span) // hop + 1))
    for w in windows:
        segment = x[w["seq"] * hop:w["seq"] * hop + span]
        offline = encoder(extract(segment, 16000, bundle.frontend).chunks[0])
        assert w["audio_time"] == pytest.approx(w["seq"] * 0.4 + 1.0)  # the end of the 1 s window
        assert cosine(np.array(w["embedding"]), offline.embedding) >= 0.9999
        assert w["label"] == bundle.labels[int(np.argmax(offline.probabilities))]


def test_the_runtime_process_never_imports_tensorflow_or_keras(tmp_path):
    """listen with every runtime part in play: embedded broker, MQTT sink, dashboard, JSONL, a file source."""
    code = (
        "import json, sys\n"
        "from audeep_edge.cli import app\n"
        "try:\n"
        f"    app(['listen', '--file', {str(RAIN)!r}, '--bundle', {str(TINY)!r}, '--max-windows', '2',\n"
        f"         '--dashboard', '--dashboard-port', '0', '--dashboard-db', {str(tmp_path / 'h.sqlite')!r},\n"
        f"         '--jsonl', {str(tmp_path / 'out.jsonl')!r}],\n"
        "        standalone_mode=False)\n"
        "finally:\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "    print(json.dumps({'heavy': heavy, 'amqtt': 'amqtt' in sys.modules, 'litert': 'ai_edge_litert' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"heavy": [], "amqtt": True, "litert": True}
    assert len(read_jsonl((tmp_path / "out.jsonl").read_text())["window"]) == 2
    assert (tmp_path / "h.sqlite").is_file()  # the dashboard records its history


def test_raw_pcm_from_a_pipe(tmp_path):
    x, _ = real_clip(tmp_path / "rain.wav", 16000)
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    done = run_cli("listen", "--stdin", "--format", "s16le", "--rate", "16000", "--channels", "1", *JSONL_ONLY,
                   stdin=pcm)
    assert done.returncode == 0, done.stderr
    assert len(read_jsonl(done.stdout)["window"]) == (x.size - 15360) // 6400 + 1
    assert "WARNING" not in done.stderr  # real 16-bit audio does not look like misread floats


def test_float_samples_read_as_s16le_are_warned_about(tmp_path):
    x, _ = real_clip(tmp_path / "rain.wav", 16000)
    done = run_cli("listen", "--stdin", "--format", "s16le", "--rate", "16000", *JSONL_ONLY,
                   stdin=x.astype("<f4").tobytes())
    assert done.returncode == 0, done.stderr
    assert "--stdin: the data looks like float32 samples read as --format s16le" in done.stderr


def test_damaged_audio_is_analysed_with_one_warning_naming_the_file_and_what_is_missing(tmp_path):
    """A WAV cut in half, an Ogg file cut in half and one with damaged pages play on, but not silently."""
    rain = RAIN.read_bytes()
    x, fs = soundfile.read(str(RAIN))
    soundfile.write(str(tmp_path / "full.wav"), x, fs, subtype="PCM_16")
    wav = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "half.wav").write_bytes(wav[:len(wav) // 2])
    (tmp_path / "half.ogg").write_bytes(rain[:len(rain) // 2])
    damaged = bytearray(rain)
    for i in range(len(rain) // 3, len(rain) // 3 + 3000, 7):
        damaged[i] ^= 0x5A
    (tmp_path / "damaged.ogg").write_bytes(bytes(damaged))
    for name, needle in [("half.wav", "the file is cut short: 2.50 s of the audio its header declares are missing"),
                         ("half.ogg", "the file is cut short (its last Ogg page has no end-of-stream mark)"),
                         ("damaged.ogg", "1.04 s of its 5.00 s could not be decoded (corrupt data)")]:
        done = run_cli("listen", "--file", tmp_path / name, *JSONL_ONLY)
        assert done.returncode == 0 and read_jsonl(done.stdout)["window"], done.stderr
        warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
        assert len(warnings) == 1 and f"--file {tmp_path / name}: {needle}" in warnings[0], done.stderr


def test_float_audio_beyond_full_scale_is_reported_at_0_dbfs_with_a_warning(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(str(path), 3.0 * np.sin(np.arange(32000) / 5), 16000, subtype="FLOAT")
    done = run_cli("listen", "--file", path, *JSONL_ONLY)
    assert done.returncode == 0, done.stderr
    assert [w["dbfs"] for w in read_jsonl(done.stdout)["window"]] == [0.0, 0.0, 0.0]
    assert f"{path}: the audio exceeds full scale (peak 3.00)" in done.stderr


def test_an_unreadable_file_is_one_error_line(tmp_path):
    secret = tmp_path / "secret.wav"
    shutil.copyfile(RAIN, secret)
    secret.chmod(0o000)
    # root reads anything: run it without the capabilities that override file permissions (util-linux setpriv)
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run([*as_user, CLI, "listen", "--file", str(secret), *map(str, JSONL_ONLY)],
                          capture_output=True, text=True, timeout=120)
    assert_one_error_line(done, f"--file {secret}: cannot read (Permission denied)")


def test_silence_is_valid_output(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(32000), 16000)
    done = run_cli("listen", "--file", path, *JSONL_ONLY, "--top-k", "3")
    assert done.returncode == 0, done.stderr
    out = read_jsonl(done.stdout)
    assert len(out["window"]) == 3 and out["info"][0]["labels"] == load_bundle(TINY).labels
    for w in out["window"]:
        assert w["dbfs"] == -120.0 and w["label"] in out["info"][0]["labels"] and 0 <= w["confidence"] <= 1
    assert out["health"][-1]["overruns"] == 0


def broken_bundle(tmp_path, *, rehash: bool):
    bundle = tmp_path / "broken.bundle"
    shutil.copytree(TINY, bundle)
    (bundle / "model.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(3000))
    if rehash:
        manifest = json.loads((bundle / "bundle.json").read_text())
        manifest["sha256"] = sha256_of(bundle / "model.tflite")
        (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


def edited_bundle(tmp_path, change):
    """A copy of the tiny bundle whose bundle.json ``change(manifest)`` edits."""
    bundle = tmp_path / "edited.bundle"
    shutil.copytree(TINY, bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    change(manifest)
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


def nan_wav(tmp_path):
    x = np.zeros(32000, np.float32)
    x[20000:20010] = np.nan
    soundfile.write(str(tmp_path / "nan.wav"), x, 16000, subtype="FLOAT")
    return tmp_path / "nan.wav"


def garbage_file(tmp_path):
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    return tmp_path / "noise.wav"


@pytest.mark.parametrize(("make_args", "needle"), [
    (lambda p: ["--file", RAIN, "--bundle", p / "missing.bundle"], "missing.bundle does not exist"),
    (lambda p: ["--file", RAIN, "--bundle", broken_bundle(p, rehash=False)], "does not match the sha256"),
    (lambda p: ["--file", RAIN, "--bundle", broken_bundle(p, rehash=True)], "not a loadable TFLite model"),
    (lambda p: ["--file", RAIN, "--bundle", TINY, "--precision", "int8"], "is float32 but the config asks"),
    (lambda p: ["--file", garbage_file(p), "--bundle", TINY], "noise.wav: cannot read audio"),
    (lambda p: ["--file", p / "absent.ogg", "--bundle", TINY], "absent.ogg: no such audio file"),
    (lambda p: ["--file", nan_wav(p), "--bundle", TINY], "nan.wav: 10 non-finite"),
    (lambda p: ["--file", RAIN, "--bundle", TINY, "--top-k", "0"], "--top-k must be between 1 and 1000"),
    (lambda p: ["--file", RAIN, "--bundle", TINY, "--broker", "http://x"], "--broker: expected mqtt://"),
    (lambda p: ["--bundle", TINY, "--max-windows", "1"], "--mic: "),  # no audio input here: no PortAudio or device
    (lambda p: ["--file", RAIN, "--bundle", swapped_model_bundle(p)], "the model takes input [1, 124, 128]"),
    (lambda p: ["--file", RAIN, "--bundle", edited_bundle(p, lambda m: m["outputs"].update(embedding=512))],
     "the model gives 32-d embeddings and 3 class probabilities, the manifest says 512"),
    (lambda p: ["--file", RAIN, "--bundle", edited_bundle(p, lambda m: m["stream"].update(hop_seconds=-1))],
     "stream.hop_seconds -1.0 must be in (0, 3600]"),
    (lambda p: ["--file", p, "--bundle", TINY], ": is a directory, not an audio file"),
    (lambda p: ["--file", RAIN, "--bundle", TINY, "--broker", "mqtt://[::1"], "--broker: expected mqtt://"),
])
def test_bad_input_gives_one_error_line_and_exit_status_2(tmp_path, make_args, needle):
    args = make_args(tmp_path)
    if "--broker" not in args:
        args += ["--broker", "none", "--jsonl", tmp_path / "out.jsonl"]
    assert_one_error_line(run_cli("listen", *args), needle)


def test_wrong_stdin_format_is_one_error_line():
    pcm = (np.sin(np.arange(32000) / 5) * 3000).astype("<i2").tobytes()
    done = run_cli("listen", "--stdin", "--format", "f32le", "--rate", "16000", *JSONL_ONLY, stdin=pcm)
    assert_one_error_line(done, "not f32le audio", "--format")
