"""``generate`` (docs/audeep.md#generate): the trained encoder's representation of every instance, metadata kept.

Input is a spectrogram netCDF file, or audio (a file, a folder or a data set directory) that is turned
into spectrograms with the run's own front-end settings, so that the features match the training ones.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from audeep_edge.dataset.parsers import Instance, Parser
from audeep_edge.errors import DataError, ModelError
from audeep_edge.training import runs
from audeep_edge.training.trainer import check_features

log = logging.getLogger(__name__)

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")


def generate_representations(run_dir: str | Path, features: np.ndarray, *, batch_size: int = 500,
                             source: str = "--input") -> np.ndarray:
    """Encode spectrograms ``(N, T, F)`` with the run's encoder.

    Returns float32 ``(N, D)`` (f-RAE: ``(N, T, D)``); deterministic (no dropout, no noise).
    Raises DataError naming ``source`` when the spectrogram shape differs from the run's input shape.
    """
    content = runs.read_run_config(run_dir)
    features = check_features(features, source)
    expected = tuple(content["input_shape"])
    if features.shape[1:] != expected:
        raise DataError(f"{source}: spectrograms of shape {features.shape[1:]} do not fit {run_dir}, which was "
                        f"trained on {expected}; extract them with the run's front-end settings")
    encoder = runs.load_encoder(run_dir)
    return np.asarray(encoder.predict(features, batch_size=batch_size, verbose=0)["embedding"], dtype=np.float32)


class _FileParser(Parser):
    """One audio file as an unlabelled data set."""

    name = "file"

    def __init__(self, path: Path) -> None:
        super().__init__(path.parent)
        self.path = path.resolve()

    def can_parse(self) -> bool:
        return self.path.is_file()

    def parse(self) -> list[Instance]:
        return [Instance(self.path, self.path.name)]


def spectrograms_from_audio(path: Path, frontend: dict | None, run_dir: Path, parser: str | None = None):
    """A spectrogram :class:`DataSet` of an audio file or directory, with the run's front end."""
    from audeep_edge.dataset.parsers import get_parser
    from audeep_edge.dataset.preprocess import preprocess
    from audeep_edge.features import FrontendConfig

    if frontend is None:
        raise ModelError(f"{run_dir}: config.json records no front-end settings (the training spectrograms had "
                         "no 'frontend' attribute); run preprocess yourself and pass the .nc file as --input")
    names = {f.name for f in dataclasses.fields(FrontendConfig)}
    cfg = FrontendConfig.from_dict({k: v for k, v in frontend.items() if k in names})
    if path.is_dir():
        return preprocess(get_parser(parser, path), cfg).dataset
    if not path.is_file():
        raise DataError(f"--input {path}: no such file or directory")
    return preprocess(_FileParser(path), cfg).dataset


def generate_dataset(run_dir: str | Path, input_path: str | Path, *, batch_size: int = 500,
                     parser: str | None = None):
    """Representations of ``input_path`` (netCDF spectrograms or audio) as a :class:`DataSet`.

    Each instance (chunks included) keeps its filename, chunk number, labels, folds and partition, and the
    label map and attributes are copied; features become ``["generated"]`` (f-RAE: ``["time", "generated"]``).
    """
    from audeep_edge.dataset import load_dataset

    run_dir, path = Path(run_dir), Path(input_path)
    content = runs.read_run_config(run_dir)
    if path.suffix.lower() in NETCDF_SUFFIXES:
        spectrograms = load_dataset(path)
    else:
        spectrograms = spectrograms_from_audio(path, content["frontend"], run_dir, parser)
    log.info("encoding %d instances of %s with %s", spectrograms.num_instances, path, run_dir)
    features = generate_representations(run_dir, spectrograms.features, batch_size=batch_size, source=str(path))
    dims = ["time", "generated"] if content["model_type"] == "f-rae" else ["generated"]
    return spectrograms.with_features(features, dims)
