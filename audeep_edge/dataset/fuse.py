"""``fuse``: concatenate the features of data sets with identical metadata; ``fuse chunks``: one instance per file."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from audeep_edge.dataset.model import DataSet
from audeep_edge.errors import DataError

METADATA = ("filenames", "chunk_nrs", "label_nominal", "label_numeric", "cv_folds", "partitions_", "label_map")
#: How each metadata attribute is called in the netCDF file (and in messages).
VARIABLE_NAMES = {"filenames": "filename", "chunk_nrs": "chunk_nr", "partitions_": "partition"}


def _first_difference(a, b) -> str:
    if isinstance(a, dict) or a is None or b is None:
        return f"{a!r} vs {b!r}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    row = int(np.flatnonzero([repr(x) != repr(y) for x, y in zip(a.tolist(), b.tolist())])[0])
    return f"first at instance {row}: {a[row]!r} vs {b[row]!r}"


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a == b


def _axis(ds: DataSet, dimension: str, name: str) -> int:
    if dimension not in ds.feature_dims:
        raise DataError(f"{name}: has no feature dimension {dimension!r} (its dimensions: "
                        f"{', '.join(ds.feature_dims)}); choose one with --dimension")
    return 1 + ds.feature_dims.index(dimension)


def fuse(datasets: list[DataSet], names: list[str], dimension: str = "generated") -> DataSet:
    """Features of all ``datasets`` concatenated along ``dimension``, in the given order.

    Every data set must have the same metadata, in the same instance order, and the same feature
    dimensions; the message names the file and variable that differ. Attributes come from the first.
    """
    if len(datasets) < 2:
        raise DataError("fuse needs at least two input files")
    first = datasets[0]
    axis = _axis(first, dimension, names[0])
    for ds, name in zip(datasets[1:], names[1:]):
        if ds.feature_dims != first.feature_dims:
            raise DataError(f"{name}: feature dimensions {ds.feature_dims} differ from {first.feature_dims} "
                            f"of {names[0]}")
        for attr in METADATA:
            if not _same(getattr(ds, attr), getattr(first, attr)):
                raise DataError(f"{name}: variable {VARIABLE_NAMES.get(attr, attr)} differs from {names[0]} "
                                f"({_first_difference(getattr(first, attr), getattr(ds, attr))}); fused data "
                                "sets need identical metadata in the same instance order")
        other = [s for i, s in enumerate(ds.features.shape) if i != axis]
        expected = [s for i, s in enumerate(first.features.shape) if i != axis]
        if other != expected:
            raise DataError(f"{name}: feature shape {ds.feature_shape} cannot be joined with {first.feature_shape} "
                            f"of {names[0]} along {dimension!r}")
    return first.replace(features=np.concatenate([ds.features for ds in datasets], axis=axis))


def fuse_chunks(ds: DataSet, dimension: str = "generated", name: str = "data set") -> DataSet:
    """One instance per file: its chunks' features concatenated in chunk order along ``dimension``.

    Output is ordered by sorted filename with chunk_nr 0 and the metadata of chunk 0. Every file must
    have the same number of chunks, numbered 0..n-1 (DataError naming the file otherwise).
    """
    axis = _axis(ds, dimension, name)
    rows: dict[str, list[int]] = defaultdict(list)
    for i, filename in enumerate(ds.filenames):
        rows[filename].append(i)
    order, counts = [], set()
    for filename in sorted(rows):
        idx = sorted(rows[filename], key=lambda i: ds.chunk_nrs[i])
        if ds.chunk_nrs[idx].tolist() != list(range(len(idx))):
            raise DataError(f"{name}: chunks of {filename} are numbered {ds.chunk_nrs[idx].tolist()}, "
                            "expected 0..n-1")
        counts.add(len(idx))
        order.append(idx)
    if len(counts) > 1:
        raise DataError(f"{name}: files have different numbers of chunks ({sorted(counts)}); run validate")
    features = np.stack([np.concatenate([ds.features[i] for i in idx], axis=axis - 1) for idx in order])
    heads = ds.subset([idx[0] for idx in order])
    return heads.replace(features=features, chunk_nrs=np.zeros(len(order), np.int64))
