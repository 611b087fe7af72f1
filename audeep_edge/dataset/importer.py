"""``import``: CSV or ARFF files (as ``export`` writes them, or any table) -> data set with ``generated`` features.

Layouts under the base directory, ``<name>.csv`` or ``<name>.arff`` in each place:
one file in the base directory; ``train/ devel/ test/``; ``fold_1/ .. fold_K/`` (fold k's file is VALID in fold k);
or ``<partition>/fold_<k>/`` (export's layout with both). Unlike auDeep the chunk-number column is recognised,
folds sort numerically, and duplicates are refused per (filename, chunk_nr), so chunked data imports.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audeep_edge.dataset.model import PARTITIONS, TRAIN, VALID, DataSet
from audeep_edge.errors import DataError

FOLD_DIR = re.compile(r"^fold_(\d+)$")


@dataclass(frozen=True)
class Columns:
    """Names of the metadata columns; every other column is a feature."""

    filename: str = "filename"
    chunk_nr: str = "chunk_nr"
    label_nominal: str = "label_nominal"
    label_numeric: str = "label_numeric"


def read_table(path: Path):
    """A CSV or ARFF file as a pandas DataFrame (ARFF missing values as NaN/None)."""
    import arff
    import pandas as pd

    try:
        if path.suffix.lower() == ".arff":
            with path.open(encoding="utf-8") as f:
                content = arff.load(f)
            return pd.DataFrame(content["data"], columns=[a[0] for a in content["attributes"]])
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, arff.ArffException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the table ({reason})") from None


def _find(directory: Path, name: str) -> Path | None:
    for ext in (".csv", ".arff"):
        candidate = directory / (name if name.lower().endswith(ext) else name + ext)
        if candidate.is_file():
            return candidate
    return None


def _fold_dirs(directory: Path) -> list[Path]:
    folds = {int(m.group(1)): d for d in directory.iterdir() if d.is_dir() and (m := FOLD_DIR.match(d.name))}
    if folds and sorted(folds) != list(range(1, len(folds) + 1)):
        raise DataError(f"{directory}: fold directories must be fold_1 .. fold_K, found {sorted(folds)}")
    return [folds[k] for k in sorted(folds)]


def locate_tables(basedir: Path, name: str) -> list[tuple[Path, int | None, int | None, int]]:
    """(table, partition code, fold index, number of folds) for every file of the layout."""
    if not basedir.is_dir():
        raise DataError(f"{basedir}: no such directory")
    single = _find(basedir, name)
    if single is not None:
        return [(single, None, None, 0)]
    found = []
    partition_dirs = [(code, basedir / p) for code, p in enumerate(PARTITIONS) if (basedir / p).is_dir()]
    places = partition_dirs or [(None, basedir)]
    for code, directory in places:
        folds = _fold_dirs(directory)
        if folds:
            for k, fold_dir in enumerate(folds):
                table = _find(fold_dir, name)
                if table is None:
                    raise DataError(f"{fold_dir}: no {name}.csv or {name}.arff")
                found.append((table, code, k, len(folds)))
        elif code is not None:
            table = _find(directory, name)
            if table is None:
                raise DataError(f"{directory}: no {name}.csv or {name}.arff")
            found.append((table, code, None, 0))
    if not found:
        raise DataError(f"{basedir}: no {name}.csv/.arff, no train/devel/test and no fold_N directories; "
                        "check --basedir and --name")
    if len({n for *_, n in found}) > 1:
        raise DataError(f"{basedir}: partitions have different numbers of fold directories")
    return found


def _missing(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value)) or value == ""


def import_dataset(basedir: str | Path, name: str, columns: Columns = Columns()) -> DataSet:
    """Read the table(s) of ``basedir`` into one data set (features: dimension ``generated``)."""
    import pandas as pd

    basedir = Path(basedir)
    frames, filenames, chunk_nrs, nominal, numeric, partitions, valid_fold = [], [], [], [], [], [], []
    tables = locate_tables(basedir, name)
    for table, partition, fold, _ in tables:
        frame = read_table(table)
        if columns.label_nominal not in frame.columns:
            raise DataError(f"{table}: no nominal label column {columns.label_nominal!r} "
                            "(set --label-nominal-attribute)")
        n = len(frame)
        filenames += (frame[columns.filename].astype(str).tolist() if columns.filename in frame.columns
                      else [f"synthetic_{table.stem}_{i}" for i in range(n)])
        chunk_nrs += (frame[columns.chunk_nr].astype(int).tolist() if columns.chunk_nr in frame.columns
                      else [0] * n)
        nominal += [None if _missing(v) else str(v) for v in frame[columns.label_nominal].tolist()]
        numeric += ([None if _missing(v) else int(v) for v in frame[columns.label_numeric].tolist()]
                    if columns.label_numeric in frame.columns else [None] * n)
        partitions += [partition] * n
        valid_fold += [fold] * n
        features = frame.drop(columns=[c for c in vars(columns).values() if c in frame.columns])
        bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if bad:
            raise DataError(f"{table}: non-numeric feature column(s) {', '.join(map(str, bad[:3]))}; name the "
                            "metadata columns with the --*-attribute options")
        frames.append(features)
    widths = {f.shape[1] for f in frames}
    if len(widths) > 1:
        raise DataError(f"{basedir}: the tables have different numbers of feature columns {sorted(widths)}")
    pairs = list(zip(filenames, chunk_nrs))
    duplicates = [pair for pair, count in Counter(pairs).items() if count > 1]
    if duplicates:
        duplicate = duplicates[0]
        raise DataError(f"{basedir}: instance {duplicate[0]} chunk {duplicate[1]} appears more than once")
    label_map = _label_map(nominal, numeric, basedir)
    num_folds = tables[0][3]
    cv = np.array([[VALID if k == f else TRAIN for k in range(num_folds)] for f in valid_fold],
                  dtype=np.int64).reshape(len(pairs), num_folds)
    return DataSet(
        np.concatenate([f.to_numpy(dtype=np.float32) for f in frames]) if frames else np.zeros((0, 0)),
        ["generated"], filenames, chunk_nrs=chunk_nrs, label_nominal=nominal,
        label_numeric=[None if n is None else label_map[n] for n in nominal], cv_folds=cv,
        partitions=partitions, label_map=label_map)


def _label_map(nominal: list, numeric: list, where: Path) -> dict[str, int]:
    """Map from the (nominal, numeric) pairs if numeric labels exist, else classes numbered alphabetically."""
    classes = sorted({n for n in nominal if n is not None})
    if all(v is None for v in numeric):
        return {c: i for i, c in enumerate(classes)}
    mapping: dict[str, int] = {}
    for nom, num in zip(nominal, numeric):
        if nom is None or num is None:
            continue
        if mapping.setdefault(nom, num) != num:
            raise DataError(f"{where}: label {nom!r} has numeric labels {mapping[nom]} and {num}")
    if len(set(mapping.values())) != len(mapping):
        raise DataError(f"{where}: several nominal labels share one numeric label")
    missing = [c for c in classes if c not in mapping]
    if missing:
        raise DataError(f"{where}: label {missing[0]!r} has no numeric label")
    return mapping
