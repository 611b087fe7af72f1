"""Event clips (``listen --clips``): what is saved, published and deleted, on real audio and a real broker."""

from __future__ import annotations

import base64
import io
import json
import os
import time

import numpy as np
import soundfile
from mqtt_testing import Collector
from stream_testing import DATA, TINY, assert_one_error_line, read_jsonl, run_cli

from audeep_edge.pipeline.clips import ClipSaver, ClipSettings

DOG = DATA / "esc_mini" / "001 - Dog bark" / "1-100032-A.ogg"
CLIP_KEYS = {"schema_version", "device_id", "clip_id", "wall_time", "duration_s", "reason", "label", "score", "seq",
             "format", "audio_b64"}


def test_a_watched_label_gives_a_published_clip_of_pre_roll_window_and_post_roll(mosquitto, tmp_path):
    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/+/clip"])
    clips, jsonl = tmp_path / "clips", tmp_path / "out.jsonl"
    done = run_cli("listen", "--file", DOG, "--bundle", TINY, "--broker", mosquitto.url, "--device-id", "porch",
                   "--jsonl", jsonl, "--clips", clips, "--watch-labels", "Dog bark", "--watch-min-score", "0.4",
                   "--clip-pre-roll", "0.5", "--clip-post-roll", "0.5")
    assert done.returncode == 0, done.stderr
    lines = read_jsonl(jsonl.read_text())
    assert collector.wait_for(lambda c: len(c.on("audeep/porch/clip")) == len(lines["clip"]) > 0)
    windows = {w["seq"]: w for w in lines["window"]}
    for (raw, retain), line in zip(collector.on("audeep/porch/clip"), lines["clip"]):
        clip = json.loads(raw, parse_constant=lambda c: 1 / 0)  # strict JSON
        assert set(clip) == CLIP_KEYS and not retain and clip["schema_version"] == 1
        assert (clip["reason"], clip["label"], clip["format"], clip["device_id"]) == ("label", "Dog bark", "ogg", "porch")
        trigger = windows[clip["seq"]]  # the window whose probability of the label reached the minimum
        assert clip["score"] == next(e["p"] for e in trigger["top_k"] if e["label"] == "Dog bark") >= 0.4
        audio = base64.b64decode(clip["audio_b64"])
        assert audio == (clips / f"{clip['clip_id']}.ogg").read_bytes()
        samples, fs = soundfile.read(io.BytesIO(audio))
        assert abs(len(samples) / fs - clip["duration_s"]) < 1e-3
        assert abs(clip["duration_s"] - 2.0) < 1e-3  # 0.5 s + the 1 s window + 0.5 s
        assert abs(clip["wall_time"] - (trigger["wall_time"] - 1.5)) < 1e-3
        assert line == {**clip, "audio_b64": None}  # JSONL: the same, without the audio
    collector.close()


def test_a_novel_sound_clip_reaches_back_to_its_start_and_a_large_one_stays_on_disk(tmp_path):
    directory = tmp_path / "clips"
    directory.mkdir()
    stale, older, newer, other = (directory / name for name in ("1700000000000-novel.ogg", "1700000000001-label.ogg",
                                                                "1700000000002-label.ogg", "notes.txt"))
    for path, age_days in ((stale, 30), (older, 1), (newer, 0.5), (other, 30)):
        path.write_bytes(b"x" * 600)
        os.utime(path, (time.time() - age_days * 86400,) * 2)
    settings = ClipSettings(directory, format="flac", max_bytes=1000, max_age_s=7 * 86400)
    saver = ClipSaver(settings, device_id="lab", sample_rate=48000, window_seconds=5.0)
    # the quota at start: too old, then the oldest past 1000 bytes; files it did not write are never touched
    assert sorted(p.name for p in directory.iterdir()) == [newer.name, other.name]

    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (48000 * 20, 2))  # stereo noise: FLAC cannot shrink it
    published = []
    for start in range(0, len(noise), 4800):
        saver.push(noise[start:start + 4800])
        if start + 4800 == 48000 * 10:  # the window ending at 10 s starts a novel sound first heard at 7 s
            saver.observe({"seq": 42, "audio_time": 10.0, "wall_time": 1000.0, "top_k": []},
                          [{"type": "novel", "state": "start", "start_time": 7.0, "peak": 0.99}])
        published += saver.ready()
    published += saver.close()

    [clip] = published
    assert (clip["reason"], clip["label"], clip["score"], clip["seq"]) == ("novel", None, 0.99, 42)
    # from 2 s before the first novel window (7 s - 5 s window) to 2 s after the triggering one
    assert (clip["duration_s"], clip["wall_time"]) == (12.0, 990.0)
    assert clip["audio_b64"] is None  # over the 1 MiB message limit: published without audio
    info = soundfile.info(str(directory / f"{clip['clip_id']}.flac"))
    assert (info.frames, info.channels, info.samplerate) == (12 * 48000, 2, 48000)
    assert not newer.exists()  # the quota makes room for the new clip, which it keeps even though it is larger


def test_a_novel_clip_reaches_back_as_far_as_the_novelty_minimum_duration(tmp_path):
    """--novelty-min-duration 20: the first novel window ends at 7 s and the event fires at 27 s; its clip still
    starts before that first window (a fixed lead would have cut it to the last few seconds)."""
    def novel_clip(lead: float) -> dict:
        settings = ClipSettings(tmp_path / f"lead-{lead}", format="flac", lead=lead)
        saver = ClipSaver(settings, device_id="lab", sample_rate=8000, window_seconds=5.0)
        published = []
        for start in range(0, 8000 * 40, 800):
            saver.push(np.zeros((800, 1)))
            if start + 800 == 8000 * 27:
                saver.observe({"seq": 7, "audio_time": 27.0, "wall_time": 1000.0, "top_k": []},
                              [{"type": "novel", "state": "start", "start_time": 7.0, "peak": 0.9}])
            published += saver.ready()
        [clip] = published + saver.close()
        return clip

    # from 2 s before the first novel window (7 s - 5 s window) to 2 s after the triggering one at 27 s
    assert novel_clip(lead=20.0)["duration_s"] == 29.0
    assert novel_clip(lead=3.0)["duration_s"] == 12.0  # pre-roll + window + lead + post-roll


def test_an_unknown_watched_label_or_an_unwritable_clips_dir_is_one_error_line(tmp_path):
    listen = ("listen", "--file", DOG, "--bundle", TINY, "--broker", "none")
    assert_one_error_line(run_cli(*listen, "--watch-labels", "Dog bark,Doorbell"), "--watch-labels", "'Doorbell'",
                          "Dog bark, Rain, Rooster")
    (tmp_path / "file").write_text("")
    assert_one_error_line(run_cli(*listen, "--clips", tmp_path / "file" / "clips"), "--clips", "cannot write")
