"""Reading and writing data sets as netCDF4 files in auDeep's exact layout.

Layout (auDeep 0.9.6, ``xarray.Dataset.to_netcdf(engine="netcdf4", format="NETCDF4")``): dimensions
``instance``, ``fold`` and one per feature axis, no coordinate variables; variables ``filename`` (str),
``chunk_nr`` (int64), ``label_nominal`` (str), ``label_numeric`` (int64), ``cv_folds`` (instance, fold; int64),
``partition`` (int64), ``features`` (instance, *feature_dims; float32); attributes ``feature_dims`` (JSON list)
and optional ``label_map`` (JSON list of ``[nominal, numeric]`` pairs sorted by nominal).
A column with missing values is written as xarray writes it for auDeep: strings with ``""``, numbers as
float64 with NaN, an entirely missing column as float64 NaN. Extra attributes (``frontend``) pass through.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from audeep_edge.dataset.model import MISSING_SPLIT, DataSet
from audeep_edge.errors import DataError

VARIABLES = ("filename", "chunk_nr", "label_nominal", "label_numeric", "cv_folds", "partition", "features")
RESERVED_ATTRS = ("feature_dims", "label_map")


def _encode_strings(column: np.ndarray) -> np.ndarray:
    if all(v is None for v in column):
        return np.full(column.shape, np.nan)
    return np.array(["" if v is None else str(v) for v in column], dtype=object)


def _encode_ints(column: np.ndarray) -> np.ndarray:
    if any(v is None for v in column):
        return np.array([np.nan if v is None else float(v) for v in column], dtype=np.float64)
    return np.asarray(list(column), dtype=np.int64).reshape(column.shape)


def to_xarray(ds: DataSet):
    """The data set as an ``xarray.Dataset`` in auDeep's layout."""
    import xarray as xr

    cv = ds.cv_folds
    cv_encoded = np.where(cv == MISSING_SPLIT, np.nan, cv) if np.any(cv == MISSING_SPLIT) else cv.astype(np.int64)
    attrs = {k: v for k, v in ds.attrs.items() if k not in RESERVED_ATTRS}
    attrs["feature_dims"] = json.dumps(ds.feature_dims)
    if ds.label_map is not None:
        attrs["label_map"] = json.dumps([[name, code] for name, code in ds.label_map.items()])
    return xr.Dataset(
        {
            "filename": ("instance", np.array([str(f) for f in ds.filenames], dtype=object)),
            "chunk_nr": ("instance", ds.chunk_nrs.astype(np.int64)),
            "label_nominal": ("instance", _encode_strings(ds.label_nominal)),
            "label_numeric": ("instance", _encode_ints(ds.label_numeric)),
            "cv_folds": (("instance", "fold"), cv_encoded),
            "partition": ("instance", _encode_ints(ds.partitions_)),
            "features": (("instance", *ds.feature_dims), ds.features.astype(np.float32, copy=False)),
        },
        attrs=attrs,
    )


def save_dataset(ds: DataSet, path: str | Path) -> None:
    """Write ``ds`` to ``path`` atomically (temporary file + rename); DataError naming the path on failure."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_xarray(ds).to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the data set ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _decode_column(values: np.ndarray, convert) -> list:
    """Object list with NaN / "" / masked values as None."""
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, (str, bytes)) and not v):
            out.append(None)
        else:
            out.append(convert(v))
    return out


def from_xarray(data, source: str = "data set") -> DataSet:
    """A DataSet from an ``xarray.Dataset`` in auDeep's layout; DataError naming ``source`` if it is not one."""
    missing = [v for v in VARIABLES if v not in data.variables]
    if missing:
        raise DataError(f"{source}: not an auDeep data set (missing variable(s) {', '.join(missing)})")
    attrs = dict(data.attrs)
    try:
        feature_dims = json.loads(attrs.pop("feature_dims")) if "feature_dims" in attrs \
            else list(data["features"].dims[1:])
        label_map = dict((str(k), int(v)) for k, v in json.loads(attrs.pop("label_map"))) \
            if "label_map" in attrs else None
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: invalid feature_dims/label_map attribute ({exc})") from None
    cv = np.asarray(data["cv_folds"].values, dtype=np.float64)
    cv = np.where(np.isnan(cv), MISSING_SPLIT, cv).astype(np.int64)
    try:
        return DataSet(
            np.asarray(data["features"].values, dtype=np.float32),
            feature_dims,
            [v.decode() if isinstance(v, bytes) else str(v) for v in data["filename"].values.tolist()],
            chunk_nrs=np.asarray(data["chunk_nr"].values).astype(np.int64),
            label_nominal=_decode_column(data["label_nominal"].values, lambda v: v.decode()
                                         if isinstance(v, bytes) else str(v)),
            label_numeric=_decode_column(data["label_numeric"].values, int),
            cv_folds=cv,
            partitions=_decode_column(data["partition"].values, int),
            label_map=label_map,
            attrs=attrs,
        )
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None


def load_dataset(path: str | Path) -> DataSet:
    """Read an auDeep-compatible netCDF file (written by auDeep or by us).

    Raises
    ------
    DataError : the file is missing, not netCDF, or not in auDeep's layout; the message names the path.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data set file")
    try:
        with xr.open_dataset(path, engine="netcdf4") as data:
            data.load()
            return from_xarray(data, str(path))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the data set ({reason})") from None
