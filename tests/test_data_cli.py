"""Data-set commands on netCDF files: validate, fuse, fuse chunks, export, import, upsample, modify."""

from __future__ import annotations

import arff
import numpy as np
import pandas as pd
import pytest
from test_dataset_model import sample_set
from conftest import cli
from test_preprocess import problems

from audeep_edge.dataset import DataSet, load_dataset


def chunked_set(files=6, chunks=2, width=3, classes=("a", "b"), folds=0, partitions=None) -> DataSet:
    """``files`` files x ``chunks`` chunks with generated features; labels alternate over ``classes``."""
    n = files * chunks
    file_of = np.repeat(np.arange(files), chunks)
    labels = [classes[f % len(classes)] for f in file_of]
    cv = np.array([[1 if f % folds == k else 0 for k in range(folds)] for f in file_of]).reshape(n, folds)
    return DataSet(np.arange(n * width, dtype=np.float32).reshape(n, width), ["generated"],
                   [f"file{f}.wav" for f in file_of], chunk_nrs=np.tile(np.arange(chunks), files),
                   label_nominal=labels, label_numeric=[classes.index(x) for x in labels], cv_folds=cv,
                   partitions=None if partitions is None else [partitions[f % len(partitions)] for f in file_of],
                   label_map={c: i for i, c in enumerate(classes)})


def test_validate_pass_and_fail_with_hand_made_violations(tmp_path, capsys):
    good = chunked_set(folds=2)
    good.save(tmp_path / "good.nc")
    assert cli(capsys, "validate", "--input", tmp_path / "good.nc")[:2] == (0, "PASS validation\n")
    nominal = good.label_nominal.copy()
    nominal[1] = "b"  # file0 chunk 1 now disagrees with chunk 0 (and with the label map's numeric label)
    chunk_nrs = good.chunk_nrs.copy()
    chunk_nrs[3] = 5
    bad = good.replace(label_nominal=nominal, chunk_nrs=chunk_nrs)
    bad.save(tmp_path / "bad.nc")
    code, out, _ = cli(capsys, "validate", "--input", tmp_path / "bad.nc", "--detailed")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "FAIL validation"
    assert "  constraint 1 (instances of a file have the same nominal label): 1 violation(s)" in lines
    assert "  constraint 5 (labels agree with the label map): 1 violation(s)" in lines
    assert "  constraint 7 (chunk numbers of each file are 0..n-1): 1 violation(s)" in lines
    assert "    file1.wav" in lines and not any("constraint 3" in line for line in lines)


def test_validate_finds_split_partition_and_chunk_count_violations(tmp_path, capsys):
    ds = chunked_set(folds=2, partitions=["train", "test"])
    cv, parts = ds.cv_folds.copy(), ds.partitions_.copy()
    cv[1] = 1 - cv[1]
    parts[3] = 1
    ds.replace(cv_folds=cv, partitions=parts).subset(np.arange(11)).save(tmp_path / "bad.nc")
    code, out, _ = cli(capsys, "validate", "--input", tmp_path / "bad.nc")
    assert code == 1
    assert {line.split(" (")[0].strip() for line in out.splitlines()[1:]} == {
        "constraint 3", "constraint 4", "constraint 6"}


def test_fuse_concatenates_features_and_names_differing_metadata(tmp_path, capsys):
    a = chunked_set()
    a.save(tmp_path / "a.nc")
    a.with_features(np.ones((12, 5))).save(tmp_path / "b.nc")
    code, _, err = cli(capsys, "fuse", "--input", tmp_path / "a.nc", tmp_path / "b.nc", "--output", tmp_path / "f.nc")
    assert code == 0, err
    fused = load_dataset(tmp_path / "f.nc")
    assert fused.feature_shape == (8,) and fused.filenames.tolist() == a.filenames.tolist()
    np.testing.assert_array_equal(fused.features[:, :3], a.features)
    labels = a.label_nominal.copy()
    labels[4] = "b"
    a.replace(label_nominal=labels).save(tmp_path / "c.nc")
    code, _, err = cli(capsys, "fuse", "--input", tmp_path / "a.nc", "--input", tmp_path / "c.nc",
                       "--output", tmp_path / "g.nc")
    assert code == 2
    assert problems(err) == [f"error: {tmp_path / 'c.nc'}: variable label_nominal differs from {tmp_path / 'a.nc'} "
                             "(first at instance 4: 'a' vs 'b'); fused data sets need identical metadata in the "
                             "same instance order"]


def test_fuse_chunks_gives_one_instance_per_file(tmp_path, capsys):
    ds = chunked_set(files=3, chunks=3)
    ds.subset(np.arange(9)[::-1]).save(tmp_path / "c.nc")  # chunks out of order on purpose
    code, _, err = cli(capsys, "fuse", "chunks", "--input", tmp_path / "c.nc", "--output", tmp_path / "f.nc")
    assert code == 0, err
    fused = load_dataset(tmp_path / "f.nc")
    assert fused.filenames.tolist() == ["file0.wav", "file1.wav", "file2.wav"]
    assert fused.chunk_nrs.tolist() == [0, 0, 0] and fused.feature_shape == (9,)
    np.testing.assert_array_equal(fused.features[1], ds.features[3:6].ravel())
    code, _, err = cli(capsys, "fuse", "chunks", "--input", tmp_path / "c.nc", "--dimension", "time",
                       "--output", tmp_path / "x.nc")
    assert code == 2 and "has no feature dimension 'time'" in err


def test_fuse_chunks_of_spectrograms_along_time(tmp_path, capsys):
    ds = DataSet(np.arange(24, dtype=np.float32).reshape(4, 3, 2), ["time", "freq"], ["x", "x", "y", "y"],
                 chunk_nrs=[0, 1, 0, 1])
    ds.save(tmp_path / "s.nc")
    assert cli(capsys, "fuse", "chunks", "--input", tmp_path / "s.nc", "--dimension", "time",
               "--output", tmp_path / "f.nc")[0] == 0
    assert load_dataset(tmp_path / "f.nc").features.shape == (2, 6, 2)


def test_export_csv_and_arff_single_file(tmp_path, capsys):
    ds = sample_set()
    ds.replace(partitions=None, cv_folds=None).save(tmp_path / "gen.nc")
    assert cli(capsys, "export", "--input", tmp_path / "gen.nc", "--format", "ARFF", "--output", tmp_path / "o")[0] == 0
    content = arff.load((tmp_path / "o" / "gen.arff").open())  # auDeep wrote a CSV here
    assert content["relation"] == "auDeep exported data set"
    assert [a[0] for a in content["attributes"]][:5] == ["filename", "chunk_nr", "label_nominal", "label_numeric",
                                                         "feature_0"]
    assert content["attributes"][2][1] == ["a", "b"] and content["data"][0][:5] == ["f0.wav", 0, "a", 0, 0.0]
    assert content["data"][4][2:4] == [None, None]
    assert cli(capsys, "export", "--input", tmp_path / "gen.nc", "--format", "csv", "--labels-last",
               "--name", "my.set", "--output", tmp_path / "o")[0] == 0
    frame = pd.read_csv(tmp_path / "o" / "my.set.csv")
    assert list(frame.columns) == ["filename", "chunk_nr", "feature_0", "feature_1", "label_nominal", "label_numeric"]
    assert frame["label_numeric"].tolist()[:4] == [0, 0, 1, 1] and frame["label_nominal"].isna().sum() == 2


def test_export_partitions_and_folds_hold_that_partitions_split(tmp_path, capsys):
    ds = chunked_set(files=12, chunks=1, folds=2, partitions=["train", "train", "test"])
    ds.save(tmp_path / "d.nc")
    assert cli(capsys, "export", "--input", tmp_path / "d.nc", "--format", "csv", "--output", tmp_path / "o")[0] == 0
    files = sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.csv"))
    assert files == ["test/fold_1/d.csv", "test/fold_2/d.csv", "train/fold_1/d.csv", "train/fold_2/d.csv"]
    test_fold_1 = pd.read_csv(tmp_path / "o" / "test" / "fold_1" / "d.csv")
    expected = [f"file{f}.wav" for f in range(12) if f % 3 == 2 and f % 2 == 0]
    assert test_fold_1["filename"].tolist() == expected  # auDeep put fold 1 of the whole data set here
    # and it imports back into the same metadata
    code, _, err = cli(capsys, "import", "--basedir", tmp_path / "o", "--name", "d", "--output", tmp_path / "i.nc")
    assert code == 0, err
    back = load_dataset(tmp_path / "i.nc")
    order = np.argsort(back.filenames.astype(str), kind="stable")
    assert back.subset(order).filenames.tolist() == sorted(ds.filenames.tolist())
    lookup = {f: i for i, f in enumerate(ds.filenames)}
    for i in range(back.num_instances):
        j = lookup[back.filenames[i]]
        assert back.partitions_[i] == ds.partitions_[j] and back.cv_folds[i].tolist() == ds.cv_folds[j].tolist()
        np.testing.assert_array_equal(back.features[i], ds.features[j])


def test_import_recognises_chunk_numbers_and_numeric_labels(tmp_path, capsys):
    ds = chunked_set(files=3, chunks=2, folds=3, classes=("x", "y"))
    ds.save(tmp_path / "c.nc")
    assert cli(capsys, "export", "--input", tmp_path / "c.nc", "--format", "arff", "--output", tmp_path / "o")[0] == 0
    assert sorted(p.parent.name for p in (tmp_path / "o").rglob("*.arff")) == ["fold_1", "fold_2", "fold_3"]
    code, _, err = cli(capsys, "import", "--basedir", tmp_path / "o", "--name", "c", "--output", tmp_path / "i.nc")
    assert code == 0, err
    back = load_dataset(tmp_path / "i.nc")
    assert back.chunk_nrs.tolist() == ds.chunk_nrs.tolist()  # auDeep imported chunk_nr as a feature
    assert back.feature_shape == (3,) and back.label_map == {"x": 0, "y": 1} and back.has_cv_info
    np.testing.assert_array_equal(back.cv_folds, ds.cv_folds)
    assert cli(capsys, "validate", "--input", tmp_path / "i.nc")[0] == 0


def test_import_of_a_plain_table_and_its_errors(tmp_path, capsys):
    pd.DataFrame({"cls": ["dog", "cat", "dog"], "f1": [1.0, 2.0, 3.0], "f2": [0.5, 0.5, 0.5]}).to_csv(
        tmp_path / "t.csv", index=False)
    code, _, err = cli(capsys, "import", "--basedir", tmp_path, "--name", "t.csv", "--label-nominal-attribute",
                       "cls", "--output", tmp_path / "t.nc")
    assert code == 0, err
    ds = load_dataset(tmp_path / "t.nc")
    assert ds.filenames.tolist() == ["synthetic_t_0", "synthetic_t_1", "synthetic_t_2"]
    assert ds.label_numeric.tolist() == [1, 0, 1] and ds.feature_shape == (2,)
    code, _, err = cli(capsys, "import", "--basedir", tmp_path, "--name", "t", "--output", tmp_path / "u.nc")
    assert code == 2 and problems(err) == [f"error: {tmp_path / 't.csv'}: no nominal label column 'label_nominal' "
                                           "(set --label-nominal-attribute)"]


def test_upsample_balances_classes(tmp_path, capsys):
    ds = chunked_set(files=8, chunks=1, classes=("a", "a", "a", "b"))
    ds.save(tmp_path / "u.nc")
    code, _, err = cli(capsys, "upsample", "--input", tmp_path / "u.nc", "--output", tmp_path / "o.nc")
    assert code == 0, err
    up = load_dataset(tmp_path / "o.nc")
    assert sorted(up.label_nominal.tolist()).count("b") == 6 and up.label_nominal.tolist().count("a") == 6
    assert "file3.wav.upsampled.3" in up.filenames.tolist() and "file0.wav.upsampled.1" in up.filenames.tolist()


def test_upsample_only_the_train_partition(tmp_path, capsys):
    ds = chunked_set(files=8, chunks=1, classes=("a", "a", "a", "b"), partitions=["train", "test"])
    ds.save(tmp_path / "u.nc")
    code, _, err = cli(capsys, "upsample", "--input", tmp_path / "u.nc", "--partitions", "train",
                       "--output", tmp_path / "o.nc")
    assert code == 0, err
    up = load_dataset(tmp_path / "o.nc")
    test = up.select_partitions(["test"])
    assert test.filenames.tolist() == ["file1.wav", "file3.wav", "file5.wav", "file7.wav"]
    train = up.select_partitions(["train"])
    assert train.num_instances == 4  # file0/2/4/6: a, a, a, a -> factor 1 each
    code, _, err = cli(capsys, "upsample", "--input", tmp_path / "u.nc", "--partitions", "devel,test",
                       "--output", tmp_path / "p.nc")
    assert code == 0, err


def test_modify_cv_setup_is_stratified_and_keeps_files_together(tmp_path, capsys):
    ds = chunked_set(files=12, chunks=2, classes=("a", "b", "c"))
    ds.save(tmp_path / "m.nc")
    code, _, err = cli(capsys, "modify", "--input", tmp_path / "m.nc", "--add-cv-setup", 4,
                       "--output", tmp_path / "cv.nc")
    assert code == 0, err
    cv = load_dataset(tmp_path / "cv.nc")
    assert cv.num_folds == 4 and cv.has_cv_info and not cv.has_overlapping_folds
    for k in range(4):
        valid = cv.split(k, "valid")
        assert sorted(set(valid.label_nominal.tolist())) == ["a", "b", "c"]
        assert valid.num_instances == 6  # 3 files x 2 chunks: chunks of a file share their fold
    assert cli(capsys, "validate", "--input", tmp_path / "cv.nc")[0] == 0
    code, _, _ = cli(capsys, "modify", "--input", tmp_path / "cv.nc", "--remove-cv-setup", "--output", tmp_path / "r.nc")
    assert code == 0 and load_dataset(tmp_path / "r.nc").num_folds == 0


def test_modify_partitioning(tmp_path, capsys):
    chunked_set(files=6, chunks=1).save(tmp_path / "m.nc")
    code, _, err = cli(capsys, "modify", "--input", tmp_path / "m.nc", "--add-partitioning", "train",
                       "--add-partitioning", "devel", "--output", tmp_path / "p.nc")
    assert code == 0, err
    parts = load_dataset(tmp_path / "p.nc")
    assert parts.has_partition_info and sorted(parts.partitions_.tolist()) == [0, 0, 0, 1, 1, 1]
    code, _, _ = cli(capsys, "modify", "--input", tmp_path / "p.nc", "--remove-partitioning", "--output",
                     tmp_path / "q.nc")
    assert code == 0 and not load_dataset(tmp_path / "q.nc").has_partition_info
    code, _, err = cli(capsys, "modify", "--input", tmp_path / "m.nc", "--remove-partitioning", "--remove-cv-setup",
                       "--output", tmp_path / "x.nc")
    assert code == 2 and "give exactly one of" in err


@pytest.mark.parametrize("command", [["validate"], ["inspect", "netcdf"], ["export", "--format", "csv", "--output", "o"]])
def test_commands_name_an_unreadable_input_file(tmp_path, capsys, command):
    (tmp_path / "junk.nc").write_bytes(b"junk")
    code, _, err = cli(capsys, *command, "--input", tmp_path / "junk.nc")
    assert code == 2 and len(problems(err)) == 1 and f"error: {tmp_path / 'junk.nc'}: cannot read" in err
