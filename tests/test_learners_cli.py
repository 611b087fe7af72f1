"""``mlp``/``svm`` commands on netCDF data sets: outputs a user scripts against, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_learners import blobs
from conftest import cli

from audeep_edge.dataset import DataSet
from audeep_edge.training.heads import load_head, read_head_info

NAMES = {"Rain": 1, "Dog bark": 0, "Sea waves": 2}  # numeric order differs from name order, as in ESC-10
FAST = ["--num-units", "16", "--num-epochs", "60", "--learning-rate", "0.01", "--seed", "3"]


def representations(path, *, labelled=True, folds=True, chunks=1, partitions=True):
    """The blobs as a saved data set of 'generated' vectors (30 files x ``chunks``), class i = numeric label i."""
    features, labels, _, cv = blobs()
    names = sorted(NAMES, key=NAMES.get)
    files = np.array([f"{names[c].lower().replace(' ', '_')}_{i:02d}.wav" for i, c in enumerate(labels)])
    ds = DataSet(np.repeat(features, chunks, axis=0), ["generated"], np.repeat(files, chunks),
                 chunk_nrs=np.tile(np.arange(chunks), len(files)),
                 label_nominal=[names[c] for c in np.repeat(labels, chunks)] if labelled else None,
                 label_numeric=np.repeat(labels, chunks) if labelled else None,
                 label_map=NAMES if labelled else None,
                 cv_folds=np.repeat(cv, chunks, axis=0) if folds else None,
                 partitions=np.repeat(np.where(np.arange(len(files)) % 4 == 0, 2, 0), chunks) if partitions else None)
    ds.save(path)
    return path


def one_error(code, err, *needles):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_evaluate_quiet_prints_accuracy_and_uar(tmp_path, capsys):
    data = representations(tmp_path / "r.nc")
    code, out, _ = cli(capsys, "svm", "evaluate", "--input", data, "--cross-validate", "--quiet", "-C", "1")
    assert code == 0
    accuracy, uar = map(float, out.strip().split(","))
    assert out.count("\n") == 1 and accuracy >= 0.95 and uar >= 0.95


def test_svm_evaluate_table_json_and_png(tmp_path, capsys):
    data = representations(tmp_path / "r.nc")
    code, out, _ = cli(capsys, "svm", "evaluate", "--input", data, "--cross-validate", "--repeat", "2", "-C", "1",
                       "--seed", "1", "--output-json", tmp_path / "e.json", "--confusion-png", tmp_path / "c.png")
    assert code == 0, out
    table = out.splitlines()[out.splitlines().index(next(l for l in out.splitlines() if l.startswith("confusion"))):]
    assert [row.split()[1] for row in table[2:]] == ["Dog", "Rain", "Sea"]  # rows by nominal name
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["labels"] == ["Dog bark", "Rain", "Sea waves"] and report["seed"] == 1
    assert len(report["splits"]) == 10 and report["accuracy"]["mean"] == 1.0
    assert np.sum(report["confusion"]) == 2 * 30
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_confusion_png_of_an_unknown_image_format_is_one_error_line(tmp_path, capsys):
    data = representations(tmp_path / "r.nc")
    one_error(*cli(capsys, "svm", "evaluate", "--input", data, "--cross-validate", "-C", "1", "--confusion-png",
                   tmp_path / "c.xyz")[::2], "--confusion-png", "c.xyz")


def test_svm_predict_writes_sorted_tsv_with_votes_over_chunks(tmp_path, capsys):
    data = representations(tmp_path / "r.nc", chunks=2)
    tsv = tmp_path / "p.tsv"
    code, _, err = cli(capsys, "svm", "predict", "--train-input", data, "--train-partitions", "train",
                       "--eval-input", data, "--eval-partitions", "test", "--majority-vote", "-C", "1",
                       "--output", tsv)
    assert code == 0, err
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert len(rows) == 8 and [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert all(r[1].lower().replace(" ", "_") == r[0].rsplit("_", 1)[0] for r in rows)  # right class names
    code, out, _ = cli(capsys, "svm", "predict", "--train-input", data, "--eval-input", data,
                       "--eval-partitions", "test", "-C", "1")  # without a vote: one line per chunk
    assert code == 0 and len(out.splitlines()) == 16 and out.splitlines()[0].split("\t")[1] == "0"


def test_mlp_train_writes_a_head_that_labels_raw_representations(tmp_path, capsys):
    data = representations(tmp_path / "r.nc")
    code, _, err = cli(capsys, "mlp", "train", "--input", data, "--output", tmp_path / "head", "--evaluate",
                       "--dataset-name", "blobs", "--shuffle", *FAST)
    assert code == 0, err
    head, labels = load_head(tmp_path / "head")
    assert labels == ["Dog bark", "Rain", "Sea waves"]
    info = read_head_info(tmp_path / "head")
    assert info["dataset"] == "blobs" and info["feature_size"] == 16 and info["learner"]["num_units"] == 16
    assert info["cross_validation"]["folds"] == 5 and info["cross_validation"]["accuracy"] >= 0.95
    features, classes, _, _ = blobs(n_per_class=4, seed=0)
    assert np.mean(np.argmax(np.asarray(head(features)), axis=1) == classes) >= 0.9


@pytest.mark.parametrize("kwargs, args, needles", [
    (dict(labelled=False), ["--cross-validate"], ["r.nc", "no labels"]),
    (dict(folds=False), ["--cross-validate"], ["r.nc", "no cross-validation folds", "--add-cv-setup"]),
    (dict(partitions=False), ["--train-partitions", "train", "--eval-partitions", "test"],
     ["r.nc", "no partition information"]),
    ({}, ["--cross-validate", "--train-partitions", "train"], ["choose one evaluation mode"]),
    ({}, ["--cross-validate", "--keep-prob", "1.5"], ["--keep-prob"]),
])
def test_evaluate_errors_are_one_line(tmp_path, capsys, kwargs, args, needles):
    data = representations(tmp_path / "r.nc", **kwargs)
    one_error(*cli(capsys, "mlp", "evaluate", "--input", data, *args)[::2], *needles)


def test_learners_refuse_spectrograms_nan_and_unlabelled_training_data(tmp_path, capsys):
    DataSet(np.zeros((4, 3, 2)), ["time", "freq"], list("abcd"), label_nominal=list("xyxy"),
            label_map={"x": 0, "y": 1}).save(tmp_path / "s.nc")
    one_error(*cli(capsys, "svm", "evaluate", "--input", tmp_path / "s.nc", "--cross-validate", "-C", "1")[::2],
              "s.nc", "one vector per instance")
    DataSet(np.array([[0.0], [np.nan]]), ["generated"], ["a", "b"], label_nominal=["x", "y"],
            label_map={"x": 0, "y": 1}).save(tmp_path / "n.nc")
    one_error(*cli(capsys, "svm", "predict", "--train-input", tmp_path / "n.nc", "--eval-input", tmp_path / "n.nc",
                   "-C", "1")[::2], "n.nc", "NaN")
    data = representations(tmp_path / "u.nc", labelled=False)
    one_error(*cli(capsys, "mlp", "train", "--input", data, "--output", tmp_path / "h")[::2], "u.nc", "no labels")
