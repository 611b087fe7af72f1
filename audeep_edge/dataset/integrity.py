"""auDeep's seven integrity constraints (``audeep validate``), plus finite features."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from audeep_edge.dataset.model import DataSet

CONSTRAINTS = (
    "instances of a file have the same nominal label",
    "instances of a file have the same numeric label",
    "instances of a file have the same split in every fold",
    "instances of a file have the same partition",
    "labels agree with the label map",
    "every file has the same number of chunks",
    "chunk numbers of each file are 0..n-1",
    "features are finite (no NaN/inf)",
)


@dataclass
class Violation:
    """One failed constraint: its number (1-based, as auDeep) and the offending files or instances."""

    constraint: int
    details: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return CONSTRAINTS[self.constraint - 1]


def _by_file(ds: DataSet) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(ds.filenames):
        groups[name].append(i)
    return {name: np.asarray(idx) for name, idx in groups.items()}


def _differs(values: np.ndarray) -> bool:
    return len({repr(v) for v in values.tolist()}) > 1


def check_integrity(ds: DataSet) -> list[Violation]:
    """All violated constraints of ``ds`` (empty list = PASS)."""
    groups = _by_file(ds)
    found = {k: Violation(k) for k in range(1, len(CONSTRAINTS) + 1)}
    for name, idx in groups.items():
        if _differs(ds.label_nominal[idx]):
            found[1].details.append(name)
        if _differs(ds.label_numeric[idx]):
            found[2].details.append(name)
        if len(idx) > 1 and np.any(ds.cv_folds[idx] != ds.cv_folds[idx[0]]):
            found[3].details.append(name)
        if _differs(ds.partitions_[idx]):
            found[4].details.append(name)
        if sorted(ds.chunk_nrs[idx].tolist()) != list(range(len(idx))):
            found[7].details.append(name)
    counts = {name: len(idx) for name, idx in groups.items()}
    if len(set(counts.values())) > 1:
        usual = max(set(counts.values()), key=list(counts.values()).count)
        found[6].details.extend(f"{name} ({n} chunks, most files have {usual})"
                                for name, n in counts.items() if n != usual)
    for i, (nominal, numeric) in enumerate(zip(ds.label_nominal, ds.label_numeric)):
        expected = None if ds.label_map is None or nominal is None else ds.label_map.get(nominal, "not in map")
        if ds.label_map is None:
            continue
        if (nominal is None) != (numeric is None) or expected != numeric:
            found[5].details.append(f"{ds.filenames[i]} chunk {ds.chunk_nrs[i]}: {nominal!r} -> {numeric!r} "
                                    f"(label map: {expected!r})")
    bad_rows = np.flatnonzero(~np.isfinite(ds.features.reshape(ds.num_instances, -1)).all(axis=1))
    found[8].details.extend(f"{ds.filenames[i]} chunk {ds.chunk_nrs[i]}" for i in bad_rows)
    return [v for v in found.values() if v.details]
