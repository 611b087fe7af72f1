"""``upsample``: repeat the instances of rare classes to balance a (part of a) data set."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from audeep_edge.dataset.model import DataSet, partition_code
from audeep_edge.errors import DataError


def upsample(ds: DataSet, partitions: Iterable[str] | None = None) -> DataSet:
    """Balance classes by repetition, as auDeep.

    Each class of the selected part (``partitions``, default the whole data set) is repeated
    ``max_count // count`` times (so classes are only approximately balanced), every copy renamed
    ``<filename>.upsampled.<i>`` (i = 1..factor); instances of the other partitions come first, unchanged.
    """
    if not ds.is_fully_labeled or ds.label_map is None:
        raise DataError("upsampling needs a fully labelled data set with a label map")
    if partitions:
        if not ds.has_partition_info:
            raise DataError("--partitions given, but the data set has no partition information")
        codes = {partition_code(p) for p in partitions}
        selected = np.array([p in codes for p in ds.partitions_], dtype=bool)
    else:
        selected = np.ones(ds.num_instances, dtype=bool)
    if not selected.any():
        raise DataError("the selected partitions hold no instances")
    counts = Counter(ds.label_nominal[selected].tolist())
    most = max(counts.values())
    factor = {label: most // count for label, count in counts.items()}
    keep, part = np.flatnonzero(~selected), np.flatnonzero(selected)
    part_factor = np.array([factor[label] for label in ds.label_nominal[part]])
    index, copy_nr = [keep], [np.zeros(keep.size, np.int64)]
    for copy in range(1, int(part_factor.max()) + 1):
        chosen = part[part_factor >= copy]
        index.append(chosen)
        copy_nr.append(np.full(chosen.size, copy))
    index, copy_nr = np.concatenate(index), np.concatenate(copy_nr)
    out = ds.subset(index)
    names = [f if c == 0 else f"{f}.upsampled.{c}" for f, c in zip(out.filenames, copy_nr)]
    return out.replace(filenames=names)
