"""auDeep's data model in memory: one instance per (file, chunk) with labels, CV folds and partitions.

Metadata are NumPy arrays; missing values are ``None`` in the object arrays (labels, partitions) and
``-1`` in ``cv_folds`` (auDeep uses the sentinels ``"__MISSING_VALUE"`` / ``-999999`` for the same idea).
Every method returns a new :class:`DataSet`; nothing is modified in place.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from audeep_edge.errors import DataError

#: Partition codes as stored in the ``partition`` variable (index = code).
PARTITIONS = ("train", "devel", "test")
#: Split codes as stored in ``cv_folds``.
SPLITS = ("train", "valid")
TRAIN, VALID, MISSING_SPLIT = 0, 1, -1


def partition_code(partition: str | int) -> int:
    """``"train"|"devel"|"test"`` (any case) or 0/1/2 -> 0/1/2; DataError otherwise."""
    if isinstance(partition, (int, np.integer)) and 0 <= int(partition) < len(PARTITIONS):
        return int(partition)
    name = str(partition).strip().lower()
    if name in PARTITIONS:
        return PARTITIONS.index(name)
    raise DataError(f"unknown partition {partition!r}; use one of {', '.join(PARTITIONS)}")


def split_code(split: str | int) -> int:
    """``"train"|"valid"`` or 0/1 -> 0/1; DataError otherwise."""
    if isinstance(split, (int, np.integer)) and int(split) in (TRAIN, VALID):
        return int(split)
    name = str(split).strip().lower()
    if name in SPLITS:
        return SPLITS.index(name)
    raise DataError(f"unknown split {split!r}; use 'train' or 'valid'")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _object_column(values: Iterable | None, n: int, convert, name: str) -> np.ndarray:
    """(n,) object array with ``convert(value)`` or None for missing values."""
    out = np.full(n, None, dtype=object)
    if values is None:
        return out
    values = list(values)
    if len(values) != n:
        raise DataError(f"{name} has {len(values)} entries for {n} instances")
    for i, value in enumerate(values):
        out[i] = None if _is_missing(value) else convert(value)
    return out


def _nominal(value: Any) -> str | None:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text or None  # xarray writes a missing string as ""; an empty class name means no label


class DataSet:
    """Features plus auDeep's per-instance metadata.

    Parameters
    ----------
    features : np.ndarray [shape=(N, *feature_shape)], stored as float32
    feature_dims : names of the feature axes, e.g. ``["time", "freq"]`` or ``["generated"]``
    filenames : (N,) file identifiers; (filename, chunk_nr) identifies an instance
    chunk_nrs : (N,) int >= 0, default all 0
    label_nominal, label_numeric : (N,) class name / index, None (or NaN) = missing
    cv_folds : (N, K) int, 0 TRAIN / 1 VALID / -1 missing; default K = 0
    partitions : (N,) 0 TRAIN / 1 DEVEL / 2 TEST (or their names), None = missing
    label_map : class name -> index; kept sorted by name
    attrs : extra netCDF attributes (e.g. ``"frontend"``: JSON of the front-end settings)
    """

    def __init__(self, features: np.ndarray, feature_dims: Sequence[str], filenames: Iterable[str], *,
                 chunk_nrs: Iterable[int] | None = None, label_nominal: Iterable | None = None,
                 label_numeric: Iterable | None = None, cv_folds: np.ndarray | None = None,
                 partitions: Iterable | None = None, label_map: Mapping[str, int] | None = None,
                 attrs: Mapping[str, Any] | None = None) -> None:
        self.features = np.asarray(features, dtype=np.float32)
        self.feature_dims = [str(d) for d in feature_dims]
        if self.features.ndim != 1 + len(self.feature_dims):
            raise DataError(f"features have shape {self.features.shape} but feature_dims {self.feature_dims} "
                            f"name {len(self.feature_dims)} axes")
        n = self.features.shape[0]
        self.filenames = np.array([str(f) for f in filenames], dtype=object)
        if self.filenames.shape != (n,):
            raise DataError(f"{len(self.filenames)} filenames for {n} feature rows")
        self.chunk_nrs = np.zeros(n, np.int64) if chunk_nrs is None else np.asarray(list(chunk_nrs), np.int64)
        if self.chunk_nrs.shape != (n,):
            raise DataError(f"{self.chunk_nrs.size} chunk numbers for {n} instances")
        self.label_nominal = _object_column(label_nominal, n, _nominal, "label_nominal")
        self.label_numeric = _object_column(label_numeric, n, int, "label_numeric")
        self.cv_folds = np.zeros((n, 0), np.int64) if cv_folds is None else np.asarray(cv_folds, dtype=np.int64)
        if self.cv_folds.ndim != 2 or self.cv_folds.shape[0] != n:
            raise DataError(f"cv_folds has shape {self.cv_folds.shape}, expected ({n}, folds)")
        self.partitions_ = _object_column(partitions, n, partition_code, "partition")
        self.label_map = None if label_map is None else {str(k): int(label_map[k]) for k in sorted(label_map)}
        self.attrs = dict(attrs or {})

    # --- shape and flags -------------------------------------------------------------------------
    @property
    def num_instances(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_folds(self) -> int:
        return int(self.cv_folds.shape[1])

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def has_cv_info(self) -> bool:
        """At least one fold and a split for every instance in every fold."""
        return self.num_folds > 0 and not np.any(self.cv_folds == MISSING_SPLIT)

    @property
    def has_partition_info(self) -> bool:
        return self.num_instances > 0 and all(p is not None for p in self.partitions_)

    @property
    def is_fully_labeled(self) -> bool:
        return all(v is not None for v in self.label_nominal) and all(v is not None for v in self.label_numeric)

    @property
    def has_overlapping_folds(self) -> bool:
        """Some instance is VALID in a number of folds other than one."""
        return self.has_cv_info and bool(np.any((self.cv_folds == VALID).sum(axis=1) != 1))

    @property
    def frontend(self) -> dict | None:
        """The front-end settings recorded by ``preprocess`` (``attrs["frontend"]``), or None."""
        raw = self.attrs.get("frontend")
        return None if raw is None else json.loads(raw)

    # --- derived data sets -----------------------------------------------------------------------
    def replace(self, **changes: Any) -> "DataSet":
        """A copy with some constructor arguments replaced (e.g. ``cv_folds=...``)."""
        fields = dict(features=self.features, feature_dims=self.feature_dims, filenames=self.filenames,
                      chunk_nrs=self.chunk_nrs, label_nominal=self.label_nominal,
                      label_numeric=self.label_numeric, cv_folds=self.cv_folds, partitions=self.partitions_,
                      label_map=self.label_map, attrs=self.attrs)
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown DataSet fields: {sorted(unknown)}")
        fields.update(changes)
        return DataSet(**fields)

    def subset(self, mask_or_index: np.ndarray | Sequence[int] | Sequence[bool]) -> "DataSet":
        """The instances selected by a boolean mask [shape=(N,)] or an index array, in that order."""
        index = np.asarray(mask_or_index)
        if index.dtype == bool and index.shape != (self.num_instances,):
            raise DataError(f"mask of shape {index.shape} for {self.num_instances} instances")
        if index.dtype != bool:
            index = index.astype(np.int64)
        return self.replace(features=self.features[index], filenames=self.filenames[index],
                            chunk_nrs=self.chunk_nrs[index], label_nominal=self.label_nominal[index],
                            label_numeric=self.label_numeric[index], cv_folds=self.cv_folds[index],
                            partitions=self.partitions_[index])

    def split(self, fold: int, split: str | int) -> "DataSet":
        """The TRAIN or VALID split of ``fold`` (0-based)."""
        if not 0 <= fold < self.num_folds:
            raise DataError(f"fold {fold} does not exist; the data set has {self.num_folds} folds")
        return self.subset(self.cv_folds[:, fold] == split_code(split))

    def select_partitions(self, partitions: Iterable[str | int]) -> "DataSet":
        """The instances in any of ``partitions`` (names or codes), in data set order."""
        codes = {partition_code(p) for p in partitions}
        return self.subset(np.array([p in codes for p in self.partitions_], dtype=bool))

    def with_features(self, features: np.ndarray, feature_dims: Sequence[str] = ("generated",)) -> "DataSet":
        """Same metadata, new features [shape=(N, ...)] (e.g. learned representations)."""
        features = np.asarray(features)
        if features.shape[0] != self.num_instances:
            raise DataError(f"{features.shape[0]} feature rows for {self.num_instances} instances")
        return self.replace(features=features, feature_dims=list(feature_dims))

    def save(self, path) -> None:
        """Write an auDeep-compatible netCDF4 file (see :mod:`audeep_edge.dataset.netcdf`)."""
        from audeep_edge.dataset.netcdf import save_dataset

        save_dataset(self, path)

    def __repr__(self) -> str:
        return (f"DataSet({self.num_instances} instances, features {self.feature_dims}={self.feature_shape}, "
                f"{self.num_folds} folds, partitions={self.has_partition_info}, labeled={self.is_fully_labeled})")


def numeric_labels(label_nominal: Iterable[str | None], label_map: Mapping[str, int] | None) -> list[int | None]:
    """Numeric labels from nominal ones through ``label_map`` (None where the nominal label is missing).

    Raises DataError naming the first class that is not in the map.
    """
    if label_map is None:
        return [None for _ in label_nominal]
    out: list[int | None] = []
    for name in label_nominal:
        if name is None:
            out.append(None)
        elif name in label_map:
            out.append(int(label_map[name]))
        else:
            raise DataError(f"label {name!r} is not in the label map ({', '.join(sorted(label_map))})")
    return out
