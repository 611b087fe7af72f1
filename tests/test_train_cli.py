"""``audeep-edge train``: class folders -> a verified bundle that ``listen`` labels with the folder names; errors,
resuming, the grafted head, the class-folder layout in the data commands.

Synthetic sounds (tones and noise) through the tiny test bundle keep it to seconds; the real-data bar (ESC-10,
the bundled encoder) is measured in docs/own-sounds.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import cli
from stream_testing import TINY, TINY_INT8, read_jsonl

from audeep_edge.bundle import load_bundle
from audeep_edge.dataset.parsers import detect_parser
from audeep_edge.dataset.parsers.classfolder import source_id, stratified_group_folds
from audeep_edge.encoder import Encoder
from audeep_edge.own_sounds.head import choose_head_input, fit_head

FS = 16000
#: class -> what its clips sound like
SOUNDS = {"beep": ("tone", 1200.0), "hum": ("tone", 150.0), "hiss": ("noise", 0.0)}


def write_clip(path: Path, kind: str, freq: float, seed: int, seconds: float = 2.0) -> Path:
    """A clip of ``kind`` (a tone at ``freq`` with a little noise, or noise), level and pitch varied by ``seed``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    level = rng.uniform(0.2, 0.6)
    if kind == "tone":
        x = level * np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t) + 0.01 * rng.standard_normal(t.size)
    else:
        x = level * rng.standard_normal(t.size) / 3
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), x, FS, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """DIR/<class>/<recording>-<n>.wav: 3 classes x 2 recordings x 3 clips, and held-out clips in DIR.held/."""
    root = tmp_path_factory.mktemp("own")
    for c, (label, (kind, freq)) in enumerate(SOUNDS.items()):
        for r, recording in enumerate(("garden", "street")):
            for n in range(1, 4):
                write_clip(root / "sounds" / label / f"{recording}-{n}.wav", kind, freq, seed=100 * c + 10 * r + n)
        write_clip(root / "held" / f"{label}.wav", kind, freq, seed=1000 + c)
    return root


def test_train_writes_a_bundle_that_listen_labels_with_the_folder_names(own, tmp_path, capsys):
    output = tmp_path / "mine.bundle"
    code, out, err = cli(capsys, "train", own / "sounds", "--output", output, "--bundle", TINY,
                         "--data-license", "own recordings")
    assert code == 0, err
    assert "3 classes (beep 6, hiss 6, hum 6 clips), 2 folds" in out   # the two recordings per class
    assert "cross-validated accuracy:" in out and "true \\ predicted" in out
    bundle = load_bundle(output)
    assert bundle.labels == ["beep", "hiss", "hum"] and bundle.precision == "float32"
    training = bundle.manifest["training"]
    assert training["license"] == "own recordings" and training["clips_per_label"] == {"beep": 6, "hiss": 6, "hum": 6}
    assert 0.0 <= training["accuracy"] <= 1.0 and training["encoder"]["bundle"] == "tiny"
    card = (output / "MODEL_CARD.md").read_text()
    assert all(text in card for text in ("beep (6 clips)", "own recordings", training["date"], "cross-validation"))
    assert (output / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((output / "parity.json").read_text())["head"]["probability_max_abs_error"] < 1e-5
    # the tiny encoder records no enrolment threshold: train measures one on these clips, so enroll can accept
    assert 0.0 < bundle.accept_similarity < 1.0 and "enrolment threshold without a baseline" in out

    config = tmp_path / "mine.toml"
    config.write_text('broker = "none"\n')
    code, out, err = cli(capsys, "config", "check", config, "--bundle", output)
    assert code == 0 and "ok" in out, err
    for label in SOUNDS:
        code, out, err = cli(capsys, "listen", "--bundle", output, "--file", own / "held" / f"{label}.wav",
                             "--broker", "none", "--jsonl", "-")
        assert code == 0, err
        windows = read_jsonl(out)["window"]
        assert windows and all(w["label"] == label for w in windows), (label, [w["label"] for w in windows])


def test_an_interrupted_run_resumes_from_the_clips_already_embedded(own, tmp_path, capsys, monkeypatch):
    from audeep_edge.own_sounds import clips

    output = tmp_path / "mine.bundle"
    real = clips.clip_windows
    calls = []

    def interrupted_after_four(bundle, path):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(path)
        return real(bundle, path)

    monkeypatch.setattr(clips, "clip_windows", interrupted_after_four)
    assert cli(capsys, "train", own / "sounds", "--output", output, "--bundle", TINY)[0] == 130
    assert not output.exists()
    resumed = []
    monkeypatch.setattr(clips, "clip_windows", lambda bundle, path: resumed.append(path) or real(bundle, path))
    code, _, err = cli(capsys, "train", own / "sounds", "--output", output, "--bundle", TINY)
    assert code == 0, err
    assert len(resumed) == 18 - 4 + 3 and not set(calls) & set(resumed[:14])  # + one clip per class for parity
    assert (tmp_path / "mine.work").is_dir()


def layout(root: Path, files: dict[str, int]) -> Path:
    """Class folders with ``n`` short clips each: ``{"rain": 2, "dog": 1}``."""
    for label, n in files.items():
        for i in range(n):
            write_clip(root / label / f"clip{i}.wav", "tone", 300.0 + 100 * i, seed=i, seconds=0.5)
    return root


@pytest.mark.parametrize("make, needles", [
    (lambda d: layout(d, {"rain": 3}), ["one class (rain)", "at least two classes"]),
    (lambda d: layout(d, {"rain": 3, "dog": 1}), ["class 'dog' has one clip"]),
    (lambda d: layout(d, {"rain": 2, "Rain": 2}), ["Rain and rain differ only in case"]),
    (lambda d: (layout(d, {"rain": 2, "dog": 2}) / "dog" / "broken.wav").write_bytes(b"RIFF junk") and d,
     ["1 unreadable audio file(s)", "broken.wav"]),
    (lambda d: d, ["no audio files"]),
])
def test_bad_folders_are_one_error_line(tmp_path, capsys, make, needles):
    data = tmp_path / "data"
    data.mkdir()
    make(data)
    code, _, err = cli(capsys, "train", data, "--output", tmp_path / "x.bundle", "--bundle", TINY)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert not (tmp_path / "x.bundle").exists()


def test_an_existing_folder_that_is_not_a_bundle_is_not_overwritten(own, tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    code, _, err = cli(capsys, "train", own / "sounds", "--output", precious, "--bundle", TINY)
    assert code == 2 and "is not a bundle" in err and (precious / "notes.txt").read_text() == "keep"


def test_the_head_only_mode_keeps_the_base_bundles_precision(own, tmp_path, capsys):
    code, _, err = cli(capsys, "train", own / "sounds", "--output", tmp_path / "x.bundle", "--bundle", TINY,
                       "--precision", "int8")
    assert code == 2 and "--precision int8: the head is added to --bundle tiny, which is float32" in err


def test_unlabelled_training_needs_a_base_bundle_that_records_its_autoencoder(own, tmp_path, capsys):
    code, _, err = cli(capsys, "train", own / "sounds", "--output", tmp_path / "x.bundle", "--bundle", TINY,
                       "--unlabelled", own / "held")
    assert code == 2 and "does not record its autoencoder settings" in err


def test_unlabelled_audio_trains_a_new_encoder_and_reports_both_accuracies(own, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    base = shutil.copytree(TINY, tmp_path / "base.bundle")  # its front end (16 kHz, 24 x 32 windows), a small t-RAE
    manifest = json.loads((base / "bundle.json").read_text())
    manifest["training"]["autoencoder"] = {"model_type": "t-rae", "architecture": {
        "num_layers": 1, "num_units": 8, "bidirectional_decoder": True}, "batch_size": 16}
    manifest["enroll"] = {"accept_similarity": 0.42}
    (base / "bundle.json").write_text(json.dumps(manifest))
    output = tmp_path / "new.bundle"
    code, out, err = cli(capsys, "train", own / "sounds", "--output", output, "--bundle", base,
                         "--unlabelled", own / "held", "--epochs", 2)
    assert code == 0, err
    assert "new encoder: precision dynamic" in out and "embedding cosine mean" in out
    assert "with the base bundle's encoder (head only, same folds)" in out
    bundle = load_bundle(output)
    assert bundle.embedding_size == 16 and bundle.labels == ["beep", "hiss", "hum"]
    assert bundle.manifest["training"]["autoencoder"]["architecture"]["num_units"] == 8
    assert "accuracy_base_encoder" in bundle.manifest["training"]
    # a new encoder: the base's enrolment threshold does not hold; its own is measured on the labelled clips
    assert bundle.accept_similarity != 0.42 and -1 <= bundle.accept_similarity <= 1
    assert f"(the encoder had none): cosine {bundle.accept_similarity:.3f}" in out


def test_the_threshold_recipe_records_an_older_bundles_enrolment_threshold_and_leaves_its_model(own, tmp_path):
    bundle = shutil.copytree(TINY, tmp_path / "older.bundle")
    assert load_bundle(bundle).accept_similarity is None
    model = (bundle / "model.tflite").read_bytes()
    script = Path(__file__).parents[1] / "train" / "enrol_threshold.py"
    run = subprocess.run([sys.executable, script, bundle, "--labelled", own / "sounds", "--exclude-fold", "2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    accept = load_bundle(bundle).accept_similarity
    assert -1 <= accept <= 1 and f"enroll.accept_similarity {accept:.4f}" in run.stdout
    assert (bundle / "model.tflite").read_bytes() == model
    run = subprocess.run([sys.executable, script, bundle, "--labelled", own / "sounds", "--exclude-fold", "7"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and run.stderr.strip().splitlines() == [
        f"error: --exclude-fold 7: {own / 'sounds'} has folds 1-2"]


def test_a_bundle_of_encoders_side_by_side_gets_the_head_input_that_cross_validates_best(own, tmp_path, capsys):
    base = shutil.copytree(TINY, tmp_path / "base.bundle")
    manifest = json.loads((base / "bundle.json").read_text())
    manifest["outputs"]["embedding_parts"] = {"first": 12, "second": 20}
    manifest["enroll"] = {"accept_similarity": 0.42}
    (base / "bundle.json").write_text(json.dumps(manifest))
    output = tmp_path / "mine.bundle"
    code, out, err = cli(capsys, "train", own / "sounds", "--output", output, "--bundle", base)
    assert code == 0, err
    training = load_bundle(output).manifest["training"]
    scores = training["accuracy_by_head_input"]
    assert list(scores) == ["all", "first", "second"] and training["accuracy"] == max(scores.values())
    assert training["head_input"] == max(scores, key=scores.get)
    assert f"the head reads {training['head_input']} of the embedding, the best of: all" in out
    assert "the best in cross-validation" in (output / "MODEL_CARD.md").read_text()
    assert load_bundle(output).embedding_parts == {"first": slice(0, 12), "second": slice(12, 32)}
    assert load_bundle(output).accept_similarity == 0.42  # same encoder: its enrolment threshold still holds


def test_the_head_reads_the_part_that_tells_the_classes_apart_and_ignores_the_rest():
    """Clip embeddings whose first part separates 3 classes and whose 200-d second part is noise."""
    rng = np.random.default_rng(0)
    labels, folds = np.repeat(np.arange(3), 20), np.tile(np.arange(4), 15)
    signal = np.eye(3)[labels] + 0.6 * rng.standard_normal((60, 3))
    clips = [np.hstack([s, rng.standard_normal(200)])[None] for s in signal]
    parts = {"signal": slice(0, 3), "noise": slice(3, 203)}
    chosen, scores = choose_head_input(clips, labels, folds, 4, 3, parts)
    assert chosen == "signal" and scores["signal"].accuracy > scores["all"].accuracy > scores["noise"].accuracy
    head = fit_head(np.concatenate(clips), labels, 3, columns=parts["signal"])
    assert head.weights.shape == (3, 203) and not head.weights[:, 3:].any()
    assert choose_head_input(clips, labels, folds, 4, 3, {})[0] == "all"


@pytest.mark.parametrize("source", [TINY, TINY_INT8])
def test_the_grafted_head_replaces_the_old_one_and_keeps_the_encoder(source, tmp_path):
    from audeep_edge.training.quantize.flatbuffer import attach_linear_head

    base = load_bundle(source)
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(4, base.embedding_size)), rng.normal(size=4)
    path = tmp_path / "model.tflite"
    path.write_bytes(attach_linear_head(base.model_path.read_bytes(), weights, bias))
    window = rng.uniform(-1, 1, base.input_shape[1:]).astype(np.float32)
    before, after = Encoder(base.model_path)(window), Encoder(path)(window)
    np.testing.assert_array_equal(before.embedding, after.embedding)
    logits = weights @ after.embedding + bias
    np.testing.assert_allclose(after.probabilities, np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum(),
                               atol=1e-6)


def test_clip_names_show_their_source_recording():
    assert source_id("1-100032-A-0") == source_id("1-100032-B") == "100032"    # ESC: the Freesound id
    assert source_id("kitchen_03") == source_id("kitchen_12") == "kitchen"
    assert source_id("street-rec-2") == "street-rec" and source_id("take7") == "take7"


def test_folds_are_stratified_and_keep_a_recording_together():
    labels = ["a"] * 6 + ["b"] * 6
    groups = ["r1", "r1", "r2", "r2", "r3", "r3"] + ["s1", "s2", "s3", "s4", "s5", "s6"]
    k, folds = stratified_group_folds(labels, groups, max_folds=5)
    assert k == 3                                                  # class a has 3 recordings
    assert folds[0] == folds[1] and folds[2] == folds[3] and folds[4] == folds[5]
    assert sorted(folds[6:]) == [0, 0, 1, 1, 2, 2]
    # a class whose clips all look like one recording is split clip by clip; a single clip: no folds
    assert stratified_group_folds(["a"] * 3 + ["b"] * 3, ["x"] * 6)[0] == 3
    assert stratified_group_folds(["a", "a", "b"], ["1", "2", "3"])[0] == 0


def test_inspect_and_preprocess_read_class_folders(own, tmp_path, capsys):
    data = own / "sounds"
    parser = detect_parser(data)
    assert parser.name == "class-folders" and parser.label_map == {"beep": 0, "hiss": 1, "hum": 2}
    assert parser.num_folds == 2
    code, out, err = cli(capsys, "inspect", "raw", "--basedir", data)
    assert code == 0 and "class-folders" in out and "3 (beep, hiss, hum)" in out, err
    code, _, err = cli(capsys, "preprocess", "--basedir", data, "--output", tmp_path / "s.nc", "--mel-spectrum", 16)
    assert code == 0, err
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(tmp_path / "s.nc")
    assert sorted(set(ds.label_nominal)) == ["beep", "hiss", "hum"] and ds.num_folds == 2
