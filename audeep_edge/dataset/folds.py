"""Labelled clips with cross-validation folds, from any labelled layout ``preprocess`` reads: what ``train``,
benchmarks and recipes iterate over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.errors import DataError


@dataclass(frozen=True)
class LabelledClips:
    """paths (N,), labels (N,) class index, names (C,) class names, folds (N,) 0..K-1, K ``num_folds``."""

    paths: list[Path]
    labels: np.ndarray
    names: list[str]
    folds: np.ndarray
    num_folds: int
    layout: str


def labelled_clips(data: Path, max_folds: int) -> LabelledClips:
    """The labelled clips of ``data`` with their folds: the layout's own (class folders: up to ``max_folds`` that
    keep the clips of one source recording together), else the class-folder parser's folds made for these clips.

    Raises
    ------
    DataError : not a labelled layout, one class, a class with one clip, two folders that differ only in case.
    """
    from audeep_edge.dataset.parsers import ClassFolderParser, detect_parser
    from audeep_edge.dataset.parsers.classfolder import with_recording_folds

    parser = detect_parser(data)
    if parser.name == ClassFolderParser.name:
        parser = ClassFolderParser(data, max_folds)
    instances = [i for i in parser.parse() if i.label_nominal is not None]
    if not instances:
        raise DataError(f"{data}: no labelled clips; put each class's clips in a folder named after it "
                        "(DIR/<label>/*.wav)")
    counts = Counter(i.label_nominal for i in instances)
    spellings = Counter(name.casefold() for name in counts)
    clash = [name for name in counts if spellings[name.casefold()] > 1]
    if clash:
        raise DataError(f"{data}: classes {' and '.join(sorted(clash))} differ only in case; merge their folders")
    if len(counts) < 2:
        raise DataError(f"{data}: one class ({next(iter(counts))}); train needs clips of at least two classes, "
                        "one folder each")
    single = sorted(name for name, n in counts.items() if n < 2)
    if single:
        raise DataError(f"{data}: class {single[0]!r} has one clip; train needs at least two per class "
                        "(eight or more give a useful accuracy)")
    names = sorted(counts)
    labels = np.asarray([names.index(i.label_nominal) for i in instances])
    num_folds = parser.num_folds
    if num_folds < 2 or any(i.cv_folds.count(1) != 1 for i in instances):
        instances, num_folds = with_recording_folds(instances, max_folds)
    folds = np.asarray([i.cv_folds.index(1) if num_folds else 0 for i in instances])
    present = np.unique(folds)
    if len(present) < num_folds:  # a layout's fold with no clips here (ESC-10 without fold 5): not a fold
        if len(present) < 2:
            instances, num_folds = with_recording_folds(instances, max_folds)
            folds = np.asarray([i.cv_folds.index(1) for i in instances])
        else:
            folds, num_folds = np.searchsorted(present, folds), len(present)
    return LabelledClips([i.path for i in instances], labels, names, folds, num_folds, parser.name)
