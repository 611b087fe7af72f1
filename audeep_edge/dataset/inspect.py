"""Summaries for ``inspect raw`` (audio files of a parser) and ``inspect netcdf`` (a data set file)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from audeep_edge.dataset.model import PARTITIONS, SPLITS, DataSet
from audeep_edge.dataset.parsers import Parser
from audeep_edge.audio.io import read_error_reason
from audeep_edge.errors import AudioError

Rows = list[tuple[str, str]]


def audio_info(path) -> tuple[float, int, int]:
    """(duration s, sample rate Hz, channels) from the file header."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({read_error_reason(exc)})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: the file contains no audio samples")
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def _distinct(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values)))


def raw_summary(parser: Parser, skip_errors: bool = False) -> tuple[Rows, list[str]]:
    """Rows (name, value) describing the parser's audio files, and the messages of files left out."""
    instances = parser.parse()
    lengths, rates, channels, skipped = [], [], [], []
    for inst in instances:
        try:
            length, fs, ch = audio_info(inst.path)
        except AudioError as exc:
            if not skip_errors:
                raise
            skipped.append(str(exc))
            continue
        lengths.append(length)
        rates.append(fs)
        channels.append(ch)
    label_map = parser.label_map
    partitions = Counter(PARTITIONS[i.partition] for i in instances if i.partition is not None)
    rows = [
        ("base directory", str(parser.basedir)),
        ("parser", parser.name),
        ("files", str(len(instances))),
        ("labels", f"{len(label_map)} ({', '.join(label_map)})" if label_map else "none"),
        ("folds", str(parser.num_folds)),
        ("partitions", ", ".join(f"{p} {n}" for p, n in partitions.items()) or "none"),
    ]
    if lengths:
        rows += [("length", f"{min(lengths):.3f} s .. {max(lengths):.3f} s"),
                 ("sample rates", f"{_distinct(rates)} Hz"), ("channels", _distinct(channels))]
    return rows, skipped


def netcdf_summary(ds: DataSet) -> Rows:
    """Rows (name, value) describing a data set."""
    frontend = ds.frontend
    rows = [
        ("instances", str(ds.num_instances)),
        ("files", str(len(set(ds.filenames.tolist())))),
        ("feature dims", f"{ds.feature_dims} = {list(ds.feature_shape)}"),
        ("cv info", f"yes, {ds.num_folds} folds" if ds.has_cv_info else "no"),
        ("partition info", "yes" if ds.has_partition_info else "no"),
        ("fully labeled", "yes" if ds.is_fully_labeled else "no"),
        ("label map", ", ".join(f"{k}={v}" for k, v in ds.label_map.items()) if ds.label_map else "none"),
    ]
    if ds.has_partition_info:
        counts = Counter(PARTITIONS[p] for p in ds.partitions_)
        rows.append(("partitions", ", ".join(f"{p} {counts[p]}" for p in PARTITIONS if counts[p])))
    if frontend:
        rows.append(("frontend", ", ".join(f"{k}={v}" for k, v in frontend.items() if v is not None)))
    return rows


def instance_rows(ds: DataSet, index: int) -> Rows:
    """Metadata of instance ``index``."""
    if not 0 <= index < ds.num_instances:
        raise IndexError(index)
    folds = ", ".join(SPLITS[s] if s >= 0 else "?" for s in ds.cv_folds[index]) or "none"
    partition = ds.partitions_[index]
    x = ds.features[index]
    return [
        ("instance", str(index)),
        ("filename", ds.filenames[index]),
        ("chunk_nr", str(ds.chunk_nrs[index])),
        ("label_nominal", str(ds.label_nominal[index])),
        ("label_numeric", str(ds.label_numeric[index])),
        ("cv_folds", folds),
        ("partition", "none" if partition is None else PARTITIONS[partition]),
        ("features", f"shape {list(x.shape)}, min {np.nanmin(x):.4g}, max {np.nanmax(x):.4g}"),
    ]


def fold_rows(ds: DataSet) -> Rows:
    """Per fold and split: number of instances and class counts with percentages."""
    rows = []
    for k in range(ds.num_folds):
        for code, split in enumerate(SPLITS):
            labels = ds.label_nominal[ds.cv_folds[:, k] == code]
            counts = Counter("?" if v is None else v for v in labels)
            detail = ", ".join(f"{c} {n} ({100 * n / len(labels):.1f}%)" for c, n in sorted(counts.items()))
            rows.append((f"fold {k + 1} {split}", f"{len(labels)}: {detail}" if len(labels) else "0"))
    return rows
