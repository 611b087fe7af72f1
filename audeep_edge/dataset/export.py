"""``export``: a data set as CSV or ARFF files, one per partition and/or fold as auDeep lays them out.

Layout under the output directory (``<ext>`` is csv or arff):
no partitions, no folds: ``<name>.<ext>``; folds only: ``fold_<k>/<name>.<ext>`` (VALID split of fold k);
partitions only: ``<partition>/<name>.<ext>``; both: ``<partition>/fold_<k>/<name>.<ext>`` (the VALID split
of fold k *within that partition*). Fixes two auDeep bugs: the single-file case honours ``--format arff``,
and partition/fold files hold that partition's split, not the whole data set's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from audeep_edge.dataset.model import PARTITIONS, VALID, DataSet
from audeep_edge.errors import DataError

log = logging.getLogger(__name__)
FORMATS = ("csv", "arff")
RELATION = "auDeep exported data set"


def write_csv(ds: DataSet, path: Path, labels_last: bool = False) -> None:
    """One row per instance: filename, chunk_nr, labels, feature_0..D-1 (labels last if asked); empty = missing."""
    import pandas as pd

    flat = ds.features.reshape(ds.num_instances, -1)
    frame = pd.DataFrame(flat, columns=[f"feature_{i}" for i in range(flat.shape[1])])
    meta = {
        "filename": pd.Series(ds.filenames, dtype=object),
        "chunk_nr": ds.chunk_nrs,
        "label_nominal": pd.Series(ds.label_nominal, dtype=object),
        "label_numeric": pd.array(ds.label_numeric.tolist(), dtype="Int64"),
    }
    head, tail = ["filename", "chunk_nr"], ["label_nominal", "label_numeric"]
    ordered = head + ([] if labels_last else tail)
    frame = pd.concat([pd.DataFrame({k: meta[k] for k in ordered}), frame], axis=1)
    if labels_last:
        frame = pd.concat([frame, pd.DataFrame({k: meta[k] for k in tail})], axis=1)
    frame.to_csv(path, index=False)


def write_arff(ds: DataSet, path: Path, labels_last: bool = False) -> None:
    """liac-arff file: filename STRING, chunk_nr INTEGER, label_nominal {classes}, label_numeric INTEGER, REALs."""
    import arff

    classes = sorted(ds.label_map) if ds.label_map else sorted({v for v in ds.label_nominal if v is not None})
    flat = ds.features.reshape(ds.num_instances, -1)
    labels = [("label_nominal", classes or ["?"]), ("label_numeric", "INTEGER")]
    features = [(f"feature_{i}", "REAL") for i in range(flat.shape[1])]
    meta = [("filename", "STRING"), ("chunk_nr", "INTEGER")]
    attributes = meta + (features + labels if labels_last else labels + features)
    data = []
    for i in range(ds.num_instances):
        label_cells = [ds.label_nominal[i], ds.label_numeric[i]]
        row_features = flat[i].tolist()
        row = [str(ds.filenames[i]), int(ds.chunk_nrs[i])]
        data.append(row + (row_features + label_cells if labels_last else label_cells + row_features))
    with path.open("w", encoding="utf-8") as f:
        arff.dump({"relation": RELATION, "attributes": attributes, "data": data}, f)


def _file_name(name: str, fmt: str) -> str:
    return name if name.lower().endswith(f".{fmt}") else f"{name}.{fmt}"


def export_parts(ds: DataSet) -> list[tuple[tuple[str, ...], DataSet]]:
    """(relative directory parts, data set) for every file that ``export`` writes."""
    if ds.has_cv_info and ds.has_overlapping_folds:
        log.warning("folds overlap: instances that are VALID in several folds appear in several files")
    by_partition = ([((PARTITIONS[code],), ds.select_partitions([code])) for code in range(len(PARTITIONS))]
                    if ds.has_partition_info else [((), ds)])
    parts = []
    for where, part in by_partition:
        if part.num_instances == 0:
            continue
        if ds.has_cv_info:
            parts.extend((where + (f"fold_{k + 1}",), part.subset(part.cv_folds[:, k] == VALID))
                         for k in range(ds.num_folds))
        else:
            parts.append((where, part))
    return parts


def export_dataset(ds: DataSet, out_dir: str | Path, fmt: str, name: str, labels_last: bool = False) -> list[Path]:
    """Write ``ds`` under ``out_dir`` in ``fmt`` (csv|arff); returns the files written."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DataError(f"--format must be csv or arff, got {fmt!r}")
    if len(ds.feature_dims) > 1:
        log.warning("flattening %d feature dimensions %s into %d columns", len(ds.feature_dims),
                    ds.feature_dims, int(np.prod(ds.feature_shape)))
    writer = write_csv if fmt == "csv" else write_arff
    written = []
    for where, part in export_parts(ds):
        path = Path(out_dir).joinpath(*where, _file_name(name, fmt))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(part, path, labels_last)
        except OSError as exc:
            raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
        written.append(path)
    return written
