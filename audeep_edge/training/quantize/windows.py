"""Spectrogram windows for calibration and parity: from a spectrogram file or a folder of audio."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from audeep_edge.audio import read_audio
from audeep_edge.errors import AudeepError, DataError
from audeep_edge.features import FrameGeometry, FrontendConfig, extract

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"})


def frontend_from_attribute(attribute: dict) -> tuple[FrontendConfig, FrameGeometry]:
    """Split a spectrogram file's ``frontend`` attribute (settings + ``fs``, ``n_fft``, ``overlap``, ``hop``)."""
    geometry_keys = ("fs", "n_fft", "overlap", "hop")
    settings = {k: v for k, v in attribute.items() if k not in geometry_keys}
    geometry = FrameGeometry(fs=int(attribute["fs"]), n_fft=int(attribute["n_fft"]),
                             overlap=int(attribute["overlap"]))
    return FrontendConfig.from_dict(settings), geometry


def _check_shape(windows: np.ndarray, window_shape: tuple[int, int], source: Path) -> np.ndarray:
    if windows.ndim != 3 or tuple(windows.shape[1:]) != tuple(window_shape):
        raise DataError(f"{source} holds windows of shape {tuple(windows.shape[1:])} but the model expects "
                        f"{tuple(window_shape)}; pass spectrograms made with the run's preprocess settings")
    return windows.astype(np.float32)


def audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursive), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def sample_windows(source: Path, window_shape: tuple[int, int], frontend: FrontendConfig | None, count: int,
                   seed: int = 0) -> np.ndarray:
    """Up to ``count`` windows [shape=(n, T, F)] drawn at random from ``source``.

    Parameters
    ----------
    source : spectrogram file (``.nc``) or folder of audio files (read through ``frontend``).
    window_shape : (T, F) the model expects.
    frontend : the run's front-end settings, needed for audio.

    Raises
    ------
    DataError : missing or empty source, wrong window shape, or audio without front-end settings.
    """
    rng = np.random.default_rng(seed)
    if source.is_dir():
        if frontend is None:
            raise DataError(f"{source}: audio needs the run's front-end settings, which its config.json lacks; "
                            "pass a spectrogram .nc file instead")
        files = audio_files(source)
        if not files:
            raise DataError(f"{source} contains no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
        windows: list[np.ndarray] = []
        for index in rng.permutation(len(files)):
            try:
                samples, fs = read_audio(files[index])
                windows.extend(extract(samples, fs, frontend, where=str(files[index])).chunks)
            except AudeepError as exc:
                log.warning("skipping %s", exc)
            if len(windows) >= count:
                break
        if not windows:
            raise DataError(f"{source}: none of its {len(files)} audio files could be read")
        return _check_shape(np.stack(windows[:count]), window_shape, source)
    if not source.is_file():
        raise DataError(f"{source} does not exist; pass a spectrogram .nc file or a folder of audio files")
    from audeep_edge.dataset import load_dataset

    features = load_dataset(source).features
    if features.shape[0] == 0:
        raise DataError(f"{source} holds no instances")
    chosen = np.sort(rng.permutation(features.shape[0])[:count])
    return _check_shape(features[chosen], window_shape, source)


def labelled_fold(path: Path, fold: int | None, window_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, str]:
    """Validation windows and nominal labels of cross-validation ``fold`` (1-based) of a spectrogram file.

    Without CV folds (or ``fold`` None with none defined) all instances are used.

    Returns
    -------
    windows [shape=(n, T, F)], labels [shape=(n,)] (object, None = unlabelled) and a description.
    """
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(path)
    where = f"{path} (all {ds.num_instances} instances)"
    if fold is not None or ds.has_cv_info:
        fold = 1 if fold is None else fold
        if not 1 <= fold <= ds.num_folds:
            raise DataError(f"--eval-fold {fold}: {path} has {ds.num_folds} cross-validation folds")
        ds = ds.split(fold - 1, "valid")
        where = f"{path} fold {fold} ({ds.num_instances} validation instances)"
    if ds.num_instances == 0:
        raise DataError(f"{where}: no instances to evaluate on")
    return _check_shape(ds.features, window_shape, path), np.asarray(ds.label_nominal, dtype=object), where
