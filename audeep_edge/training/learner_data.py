"""netCDF data sets -> what the learners take: feature vectors, class indices and evaluation splits
(docs/audeep.md#learners-and-evaluation).

Class indices follow the label map sorted by numeric label. Errors name the data set's path and the CLI option
that selected what is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audeep_edge.dataset import DataSet, load_dataset
from audeep_edge.errors import ConfigError, DataError
from audeep_edge.training.evaluation import Split, cross_validation_splits, partition_split


def load_vectors(path: Path) -> DataSet:
    """A data set with one feature vector per instance; DataError naming ``path`` otherwise."""
    ds = load_dataset(path)
    if ds.features.ndim != 2:
        raise DataError(f"{path}: features have dimensions {ds.feature_dims} {list(ds.feature_shape)}; learners "
                        "need one vector per instance (run `generate`, or `fuse chunks` first)")
    if ds.num_instances == 0:
        raise DataError(f"{path}: the data set has no instances")
    if not np.isfinite(ds.features).all():
        raise DataError(f"{path}: the features contain NaN or infinite values")
    return ds


def class_names(ds: DataSet, path: Path) -> list[str]:
    """Label names in class-index order (label map sorted by numeric label)."""
    if not ds.label_map:
        raise DataError(f"{path}: the data set has no labels (no label map); learners need labelled data")
    return sorted(ds.label_map, key=ds.label_map.get)


def class_indices(ds: DataSet, names: list[str], path: Path, needed: np.ndarray | None = None) -> np.ndarray:
    """(N,) class indices (-1 where unlabelled); DataError if an instance in ``needed`` (N,) bool has no label."""
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([-1 if name is None else index.get(name, -2) for name in ds.label_nominal], np.int64)
    needed = np.ones(ds.num_instances, bool) if needed is None else needed
    if np.any(labels[needed] == -2):
        unknown = sorted({n for n, lab in zip(ds.label_nominal, labels) if lab == -2})
        raise DataError(f"{path}: label(s) {', '.join(unknown[:5])} are not in the training label map")
    missing = int(np.sum(labels[needed] == -1))
    if missing:
        raise DataError(f"{path}: {missing} of the {int(needed.sum())} instances used have no label; "
                        "learners need labelled data")
    return labels


def select_partitions(ds: DataSet, path: Path, partitions: list[int], option: str) -> DataSet:
    """The instances in ``partitions`` (all when empty); ``option`` names the CLI option in errors."""
    if not partitions:
        return ds
    if not any(p is not None for p in ds.partitions_):
        raise DataError(f"{path}: the data set has no partition information for {option}")
    selected = ds.select_partitions(partitions)
    if selected.num_instances == 0:
        raise DataError(f"{path}: no instances in the partitions given by {option}")
    return selected


def evaluation_splits(ds: DataSet, path: Path, cross_validate: bool, train_partitions: list[int],
                      eval_partitions: list[int]) -> list[Split]:
    """The data set's cross-validation folds, or one train/evaluate split by partition."""
    if cross_validate == bool(train_partitions or eval_partitions):
        raise ConfigError("choose one evaluation mode: --cross-validate, or --train-partitions with --eval-partitions")
    if cross_validate:
        if not ds.has_cv_info:
            raise DataError(f"{path}: the data set has no cross-validation folds; add them with `audeep-edge modify "
                            "--add-cv-setup 5` or use --train-partitions/--eval-partitions")
        return cross_validation_splits(ds.cv_folds)
    if not (train_partitions and eval_partitions):
        raise ConfigError("--train-partitions and --eval-partitions must be given together")
    if not any(p is not None for p in ds.partitions_):
        raise DataError(f"{path}: the data set has no partition information; use --cross-validate")
    return [partition_split(ds.partitions_, train_partitions, eval_partitions)]
