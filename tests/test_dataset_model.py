"""The data model: auDeep's netCDF layout in both directions, missing values, selections."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest

from audeep_edge.dataset import DataSet, load_dataset
from audeep_edge.errors import DataError

AUDEEP_VARIABLES = {"filename", "chunk_nr", "label_nominal", "label_numeric", "cv_folds", "partition", "features"}


def write_audeep_file(path, n=6, folds=5):
    """A file as auDeep 0.9.6 (xarray 0.10, netCDF4) writes preprocess output for ESC: 5 folds, no partitions
    (an all-NaN float column), a label map attribute, (time, freq) features."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("instance", n)
        nc.createDimension("fold", folds)
        nc.createDimension("time", 4)
        nc.createDimension("freq", 3)
        nc.createVariable("filename", str, ("instance",))[:] = np.array([f"{i + 1}-x.ogg" for i in range(n)], object)
        nc.createVariable("chunk_nr", "i8", ("instance",))[:] = np.zeros(n, np.int64)
        nc.createVariable("label_nominal", str, ("instance",))[:] = np.array(["Dog bark", "Rain"] * (n // 2), object)
        nc.createVariable("label_numeric", "i8", ("instance",))[:] = np.array([0, 1] * (n // 2))
        nc.createVariable("cv_folds", "i8", ("instance", "fold"))[:] = np.eye(n, folds, dtype=np.int64)
        nc.createVariable("partition", "f8", ("instance",), fill_value=np.nan)[:] = np.full(n, np.nan)
        nc.createVariable("features", "f4", ("instance", "time", "freq"))[:] = (
            np.arange(n * 12, dtype=np.float32).reshape(n, 4, 3) / (n * 12))
        nc.setncattr("feature_dims", json.dumps(["time", "freq"]))
        nc.setncattr("label_map", json.dumps([["Dog bark", 0], ["Rain", 1]]))


def sample_set(n=6, **overrides) -> DataSet:
    fields = dict(
        features=np.arange(n * 2, dtype=np.float32).reshape(n, 2),
        feature_dims=["generated"],
        filenames=[f"f{i // 2}.wav" for i in range(n)],
        chunk_nrs=[i % 2 for i in range(n)],
        label_nominal=["a", "a", "b", "b", None, None][:n],
        label_numeric=[0, 0, 1, 1, None, None][:n],
        cv_folds=np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 0]][:n]),
        partitions=["train", "train", "devel", "devel", None, None][:n],
        label_map={"b": 1, "a": 0},
    )
    fields.update(overrides)
    return DataSet(**fields)


def test_a_file_written_by_audeep_loads(tmp_path):
    path = tmp_path / "audeep.nc"
    write_audeep_file(path)
    ds = load_dataset(path)
    assert ds.num_instances == 6 and ds.feature_dims == ["time", "freq"] and ds.feature_shape == (4, 3)
    assert ds.features.dtype == np.float32
    assert ds.filenames.tolist()[:2] == ["1-x.ogg", "2-x.ogg"]
    assert ds.label_nominal.tolist()[:2] == ["Dog bark", "Rain"] and ds.label_numeric.tolist()[:2] == [0, 1]
    assert ds.label_map == {"Dog bark": 0, "Rain": 1}
    assert ds.partitions_.tolist() == [None] * 6 and not ds.has_partition_info
    assert ds.num_folds == 5 and ds.has_cv_info and ds.is_fully_labeled
    assert ds.split(0, "valid").filenames.tolist() == ["1-x.ogg"]
    assert ds.attrs == {}


def test_written_file_has_audeeps_variables_dims_and_attributes(tmp_path):
    path = tmp_path / "ours.nc"
    sample_set(attrs={"frontend": json.dumps({"fs": 16000})}).save(path)
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)  # look at the stored values (xarray adds _FillValue = NaN to floats)
        assert set(nc.variables) == AUDEEP_VARIABLES  # no coordinate variables
        assert set(nc.dimensions) == {"instance", "fold", "generated"}
        assert nc["features"].dimensions == ("instance", "generated") and nc["features"].dtype == np.float32
        assert nc["cv_folds"].dimensions == ("instance", "fold") and nc["cv_folds"].dtype == np.int64
        assert nc["filename"].dtype is str and nc["chunk_nr"].dtype == np.int64
        # columns with missing values are encoded as xarray encodes them for auDeep
        assert nc["label_nominal"].dtype is str and list(nc["label_nominal"][:])[4:] == ["", ""]
        assert nc["label_numeric"].dtype == np.float64 and np.isnan(nc["label_numeric"][4])
        assert nc["partition"].dtype == np.float64 and nc["partition"][2] == 1.0
        assert json.loads(nc.getncattr("feature_dims")) == ["generated"]
        assert json.loads(nc.getncattr("label_map")) == [["a", 0], ["b", 1]]  # sorted by nominal
        assert json.loads(nc.getncattr("frontend")) == {"fs": 16000}


def test_round_trip_keeps_metadata_and_missing_values(tmp_path):
    ds = sample_set()
    ds.save(tmp_path / "x.nc")
    back = load_dataset(tmp_path / "x.nc")
    np.testing.assert_array_equal(back.features, ds.features)
    for name in ("filenames", "chunk_nrs", "label_nominal", "label_numeric", "partitions_"):
        assert getattr(back, name).tolist() == getattr(ds, name).tolist()
    np.testing.assert_array_equal(back.cv_folds, ds.cv_folds)
    assert back.label_map == {"a": 0, "b": 1}


def test_entirely_missing_columns_and_no_folds_round_trip(tmp_path):
    ds = DataSet(np.zeros((3, 2, 2)), ["time", "freq"], ["a", "b", "c"])
    ds.save(tmp_path / "x.nc")
    with netCDF4.Dataset(tmp_path / "x.nc") as nc:
        assert nc["partition"].dtype == np.float64 and nc["label_nominal"].dtype == np.float64
        assert len(nc.dimensions["fold"]) == 0
    back = load_dataset(tmp_path / "x.nc")
    assert back.num_folds == 0 and not back.has_cv_info and back.label_map is None
    assert back.label_nominal.tolist() == [None] * 3 and back.partitions_.tolist() == [None] * 3


def test_selections_return_new_data_sets():
    ds = sample_set()
    assert ds.split(1, "valid").filenames.tolist() == ["f1.wav", "f1.wav"]
    assert ds.split(0, "train").num_instances == 2
    assert ds.select_partitions(["devel"]).chunk_nrs.tolist() == [0, 1]
    assert ds.subset([5, 0]).filenames.tolist() == ["f2.wav", "f0.wav"]
    generated = ds.with_features(np.ones((6, 7)))
    assert generated.feature_dims == ["generated"] and generated.feature_shape == (7,)
    assert generated.label_map == ds.label_map and ds.feature_shape == (2,)
    assert not ds.has_partition_info and not ds.is_fully_labeled and ds.has_cv_info
    with pytest.raises(DataError, match="fold 2 does not exist"):
        ds.split(2, "train")
    with pytest.raises(DataError, match="unknown partition"):
        ds.select_partitions(["validation"])


@pytest.mark.parametrize("content", [b"", b"not a netCDF file at all"])
def test_unreadable_file_names_the_path(tmp_path, content):
    path = tmp_path / "broken.nc"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken.nc"):
        load_dataset(path)


def test_netcdf_without_audeep_variables_is_refused(tmp_path):
    path = tmp_path / "other.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 2)
        nc.createVariable("temperature", "f4", ("x",))[:] = [1, 2]
    with pytest.raises(DataError, match=r"other.nc: not an auDeep data set \(missing variable\(s\) filename"):
        load_dataset(path)
    with pytest.raises(DataError, match="no such data set file"):
        load_dataset(tmp_path / "missing.nc")
