"""``preprocess``: a parser's audio files -> spectrogram data set, optionally in parallel processes."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import Callable

import numpy as np

from audeep_edge.audio import read_audio
from audeep_edge.dataset.model import DataSet, numeric_labels
from audeep_edge.dataset.parsers import Instance, Parser
from audeep_edge.dataset.parsers.base import alphabetical_label_map
from audeep_edge.errors import AudeepError, DataError
from audeep_edge.features import FrameGeometry, FrontendConfig, extract

log = logging.getLogger(__name__)


@dataclass
class PreprocessResult:
    """The data set and the files left out with ``skip_errors`` (one message each, naming the file)."""

    dataset: DataSet
    skipped: list[str] = field(default_factory=list)


def extract_file(path, cfg: FrontendConfig) -> tuple[list[np.ndarray] | None, FrameGeometry | None, str | None]:
    """Spectrogram chunks of one file, or ``(None, None, message)`` for a user-caused failure.

    Runs in worker processes: errors come back as values so that one bad file does not stop the pool.
    """
    try:
        samples, fs = read_audio(path)
        result = extract(samples, fs, cfg, where=str(path))
        return result.chunks, result.geometry, None
    except AudeepError as exc:
        return None, None, str(exc)


def frontend_attribute(cfg: FrontendConfig, geometry: FrameGeometry) -> str:
    """JSON stored as the data set's ``frontend`` attribute: settings plus the frame geometry used."""
    return json.dumps({**cfg.to_dict(), "fs": geometry.fs, "n_fft": geometry.n_fft,
                       "overlap": geometry.overlap, "hop": geometry.hop})


def single_blas_thread() -> None:
    """Limit BLAS to one thread in this process.

    The mel projection is a small matrix product per file; multi-threaded OpenBLAS made it ~20x slower
    on 2 busy cores (120 ms vs 6.5 ms per ESC clip), and with N processes the threads oversubscribe anyway.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


@contextmanager
def _results(instances: list[Instance], cfg: FrontendConfig, jobs: int):
    """An iterator of ``extract_file`` results in instance order (a process pool when ``jobs`` > 1).

    Leaving the context early (an error) cancels the files not yet started.
    """
    paths = [inst.path for inst in instances]
    if jobs <= 1 or len(paths) <= 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            yield (extract_file(p, cfg) for p in paths)
        return
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=single_blas_thread)
    try:
        yield pool.map(extract_file, paths, repeat(cfg), chunksize=max(1, min(8, len(paths) // (4 * jobs))))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def preprocess(parser: Parser, cfg: FrontendConfig, *, jobs: int = 1, skip_errors: bool = False,
               on_file_done: Callable[[], None] | None = None) -> PreprocessResult:
    """Extract spectrograms for every file of ``parser`` into one data set.

    Each chunk becomes an instance with features (T, F) float32 in [-1, 1], dims ``["time", "freq"]``.

    Parameters
    ----------
    jobs : number of worker processes (1 = in this process); results keep the parser's order.
    skip_errors : leave out unreadable files and files whose spectrogram shape differs, instead of failing.
    on_file_done : called once per processed file (progress display).

    Raises
    ------
    DataError / AudioError naming the file (without ``skip_errors``), or when no file is usable.
    """
    instances = parser.parse()
    if not instances:
        raise DataError(f"{parser.basedir}: the {parser.name} parser found no audio files")
    rows: list[tuple[Instance, int, np.ndarray]] = []
    skipped: list[str] = []
    first: tuple[Instance, FrameGeometry, tuple] | None = None
    with _results(instances, cfg, jobs) as results:
        for inst, (chunks, geometry, error) in zip(instances, results):
            if error is None and first is not None and chunks[0].shape != first[2]:
                error = (f"{inst.path}: spectrogram shape {chunks[0].shape} differs from {first[2]} of "
                         f"{first[0].path}; use --fixed-length (and --sample-rate) to give all files one shape")
            if error is not None:
                if not skip_errors:
                    raise DataError(error)
                log.warning("skipping %s", error)
                skipped.append(error)
            else:
                if first is None:
                    first = (inst, geometry, chunks[0].shape)
                elif geometry != first[1]:
                    log.warning("%s: frame geometry %s differs from %s of the first file; use --sample-rate to "
                                "resample all files to one rate", inst.path, geometry, first[1])
                rows.extend((inst, nr, chunk) for nr, chunk in enumerate(chunks))
            if on_file_done is not None:
                on_file_done()
    if first is None:
        raise DataError(f"{parser.basedir}: none of the {len(instances)} files could be processed")
    label_map = parser.label_map
    nominal = [inst.label_nominal for inst, _, _ in rows]
    if label_map is None and any(n is not None for n in nominal):
        label_map = alphabetical_label_map(n for n in nominal if n is not None)
    num_folds = max(len(inst.cv_folds) for inst, _, _ in rows)
    cv = np.array([inst.cv_folds if inst.cv_folds else (-1,) * num_folds for inst, _, _ in rows],
                  dtype=np.int64).reshape(len(rows), num_folds)
    dataset = DataSet(
        np.stack([chunk for _, _, chunk in rows]),
        ["time", "freq"],
        [inst.filename for inst, _, _ in rows],
        chunk_nrs=[nr for _, nr, _ in rows],
        label_nominal=nominal,
        label_numeric=numeric_labels(nominal, label_map),
        cv_folds=cv,
        partitions=[inst.partition for inst, _, _ in rows],
        label_map=label_map,
        attrs={"frontend": frontend_attribute(cfg, first[1])},
    )
    return PreprocessResult(dataset, skipped)
