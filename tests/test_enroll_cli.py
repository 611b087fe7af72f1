"""`audeep-edge enroll` on a real bundle and real audio: enroll, list, remove, errors, use by `listen`'s head."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from stream_testing import TINY, read_jsonl
from conftest import cli

from audeep_edge.bundle import load_bundle
from audeep_edge.pipeline.embed import embed_audio
from audeep_edge.head.adaptation import Adaptation
from audeep_edge.head.enroll import ENROLLED_FILE, ENROLLED_INDEX


@pytest.fixture
def bundle(tmp_path):
    """A writable copy of the tiny test bundle (labels Dog bark, Rain, Rooster)."""
    return shutil.copytree(TINY, tmp_path / "tiny.bundle")


def adaptation(bundle) -> Adaptation:
    b = load_bundle(bundle)
    return Adaptation(bundle, b.manifest["sha256"], b.embedding_size, interval=0.0)


def test_enroll_from_one_clip_is_used_by_the_head_at_once(bundle, tone_wav, capsys):
    beep = tone_wav("beep.wav", seconds=3.0, freq=1000.0)
    code, out, err = cli(capsys, "enroll", "--bundle", bundle, "--label", "beep", "--file", beep)
    assert code == 0, err
    assert "enrolled 'beep'" in out
    assert sorted(p.name for p in bundle.iterdir() if "enrolled" in p.name) == sorted([ENROLLED_FILE, ENROLLED_INDEX])
    assert [c["name"] for c in json.loads((bundle / ENROLLED_INDEX).read_text())["classes"]] == ["beep"]

    head = adaptation(bundle)
    labels = head.labels(load_bundle(bundle).labels)
    assert labels == ["Dog bark", "Rain", "Rooster", "beep"]
    later = embed_audio(load_bundle(bundle), files=[tone_wav("later.wav", seconds=1.5, freq=1000.0)])
    trained = np.full(3, 1 / 3)
    for embedding in later.embeddings:
        p = head.classify(embedding, trained)
        assert p.shape == (4,) and np.isclose(p.sum(), 1.0) and labels[int(np.argmax(p))] == "beep"


def test_list_and_remove(bundle, tone_wav, esc_mini, capsys):
    rooster = sorted((esc_mini / "009 - Rooster").glob("*.ogg"))
    assert cli(capsys, "enroll", "--bundle", bundle, "--label", "beep", "--file", tone_wav())[0] == 0
    # several files after one --file, as a shell glob gives them
    code, _, err = cli(capsys, "enroll", "--bundle", bundle, "--label", "my rooster", "--file", *rooster[:2])
    assert code == 0, err
    code, out, _ = cli(capsys, "enroll", "--bundle", bundle, "--list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["beep", "my rooster"]
    assert cli(capsys, "enroll", "--bundle", bundle, "--remove", "beep")[0] == 0
    assert adaptation(bundle).labels([]) == ["my rooster"]
    assert cli(capsys, "enroll", "--bundle", bundle, "--remove", "my rooster")[0] == 0
    assert adaptation(bundle).enrolled is None
    assert cli(capsys, "enroll", "--bundle", bundle, "--list")[1].strip() == "no enrolled labels"


def one_error_line(code: int, err: str, *needles: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert all(needle in errors[0] for needle in needles), errors[0]


@pytest.mark.parametrize("args, needles", [
    (["--remove", "cat"], ["--remove 'cat'", "enrolled: none"]),
    (["--label", "cat"], ["no audio", "--file", "--seconds"]),
    (["--label", "Rain", "--seconds", "3"], ["'Rain'", "trained labels"]),
    (["--label", "rAIN", "--seconds", "3"], ["'rAIN'", "trained labels", "'Rain'"]),  # one class, one spelling
    (["--label", "cat", "--remove", "dog"], ["exactly one"]),
    (["--label", "cat", "--file", "missing.wav"], ["missing.wav"]),
])
def test_user_errors_are_one_line_and_exit_2(bundle, capsys, args, needles):
    code, _, err = cli(capsys, "enroll", "--bundle", bundle, *args)
    one_error_line(code, err, *needles)
    assert not (bundle / ENROLLED_FILE).exists()


def test_another_spelling_of_an_enrolled_label_is_that_label(bundle, tone_wav, capsys):
    assert cli(capsys, "enroll", "--bundle", bundle, "--label", "Door bell", "--file", tone_wav())[0] == 0
    code, out, err = cli(capsys, "enroll", "--bundle", bundle, "--label", "door BELL", "--append", "--file",
                         tone_wav("more.wav", freq=500.0))
    assert code == 0, err
    assert "'door BELL' is the enrolled label 'Door bell'" in out and "adding to its examples" in out
    assert adaptation(bundle).labels([]) == ["Door bell"]
    assert cli(capsys, "enroll", "--bundle", bundle, "--remove", "DOOR bell")[1].startswith("removed 'Door bell'")


def test_a_clip_shorter_than_a_window_is_padded_to_one(bundle, tone_wav, capsys):
    short = tone_wav("short.wav", seconds=0.3)  # the tiny bundle's windows are 1 s
    code, out, err = cli(capsys, "enroll", "--bundle", bundle, "--label", "blip", "--file", short)
    assert code == 0, err
    assert "from 1 of 1 windows" in out


def test_a_read_only_bundle_is_refused_before_recording(bundle, tone_wav, capsys):
    bundle.chmod(0o555)
    try:
        if os.access(bundle, os.W_OK):
            pytest.skip("running as root: a read-only directory is still writable")
        code, _, err = cli(capsys, "enroll", "--bundle", bundle, "--label", "blip", "--file", tone_wav())
        one_error_line(code, err, "read-only", "--bundle")
    finally:
        bundle.chmod(0o755)


def test_a_running_listen_learns_a_new_label_without_restarting(bundle, tone_wav, capsys):
    head = adaptation(bundle)
    assert head.labels(["Rain"]) == ["Rain"] and not head.poll()
    assert cli(capsys, "enroll", "--bundle", bundle, "--label", "beep", "--file", tone_wav())[0] == 0
    assert head.poll() and head.labels(["Rain"]) == ["Rain", "beep"]
    assert cli(capsys, "enroll", "--bundle", bundle, "--remove", "beep")[0] == 0
    assert head.poll() and head.labels(["Rain"]) == ["Rain"]


def test_listen_labels_the_enrolled_sound_right_after_enrolling(bundle, tone_wav, capsys):
    assert cli(capsys, "enroll", "--bundle", bundle, "--label", "beep", "--file", tone_wav(freq=1000.0))[0] == 0
    later = tone_wav("later.wav", seconds=2.0, freq=1000.0)
    code, out, err = cli(capsys, "listen", "--bundle", bundle, "--file", later, "--broker", "none", "--jsonl", "-")
    assert code == 0, err
    lines = read_jsonl(out)
    assert lines["info"][0]["labels"] == ["Dog bark", "Rain", "Rooster", "beep"]
    assert lines["window"] and all(w["label"] == "beep" for w in lines["window"])
    assert all("novelty" not in w for w in lines["window"])  # no baseline fitted: no score
