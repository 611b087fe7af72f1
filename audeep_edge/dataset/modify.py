"""``modify``: add or remove a cross-validation setup or a partitioning, assigning whole files."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from audeep_edge.dataset.model import TRAIN, VALID, DataSet, partition_code
from audeep_edge.errors import DataError


def round_robin_files(ds: DataSet, groups: int) -> dict[str, int]:
    """Assign every file to one of ``groups`` groups, stratified by class when the data set is labelled.

    Within each class (sorted by name) files are taken in sorted-filename order and dealt round-robin; the
    counter runs on across classes, so group sizes differ by at most one file (auDeep restarts it for each
    class). Unlabelled data sets are dealt over all sorted files. Deterministic, as in auDeep.
    """
    label_of = {}
    for filename, label in zip(ds.filenames, ds.label_nominal):
        label_of.setdefault(filename, label if ds.is_fully_labeled else None)
    by_class: dict[str, list[str]] = defaultdict(list)
    for filename in sorted(label_of):
        by_class["" if label_of[filename] is None else label_of[filename]].append(filename)
    if len(label_of) < groups:
        raise DataError(f"cannot deal {len(label_of)} files into {groups} groups; use fewer")
    files = [f for label in sorted(by_class) for f in by_class[label]]
    return {filename: i % groups for i, filename in enumerate(files)}


def add_cv_setup(ds: DataSet, num_folds: int) -> DataSet:
    """``num_folds`` folds; each file is VALID in exactly one (0 removes the CV setup)."""
    if num_folds < 0:
        raise DataError(f"--add-cv-setup needs a number of folds >= 0, got {num_folds}")
    if num_folds == 0:
        return remove_cv_setup(ds)
    fold_of = round_robin_files(ds, num_folds)
    valid_fold = np.array([fold_of[f] for f in ds.filenames])
    cv = np.where(np.arange(num_folds)[None, :] == valid_fold[:, None], VALID, TRAIN)
    return ds.replace(cv_folds=cv)


def add_partitioning(ds: DataSet, partitions: Iterable[str]) -> DataSet:
    """Deal the files over ``partitions`` (e.g. ``["train", "devel", "test"]``) round-robin."""
    codes = [partition_code(p) for p in partitions]
    if not codes or len(set(codes)) != len(codes):
        raise DataError("--add-partitioning needs distinct partitions among train, devel, test")
    group_of = round_robin_files(ds, len(codes))
    return ds.replace(partitions=[codes[group_of[f]] for f in ds.filenames])


def remove_partitioning(ds: DataSet) -> DataSet:
    return ds.replace(partitions=None)


def remove_cv_setup(ds: DataSet) -> DataSet:
    return ds.replace(cv_folds=np.zeros((ds.num_instances, 0), np.int64))
