"""Clips on the device path: audio -> ``listen``'s windows (front end, normalisation) -> encoder embeddings,
cached per clip in the work directory so that an interrupted ``train`` resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from audeep_edge.bundle import Bundle
from audeep_edge.encoder import Encoder
from audeep_edge.features import encoder_input
from audeep_edge.pipeline.windows import source_windows


def clip_windows(bundle: Bundle, path: Path) -> np.ndarray:
    """The encoder inputs ``listen --file`` computes for ``path`` [shape=(n, T, F), float32], at the bundle's hop.

    A clip shorter than one window is zero-padded to one window plus one frame, as ``enroll`` pads it.

    Raises
    ------
    AudioError : the file cannot be read (naming it).
    """
    fe = bundle.frontend
    return np.stack([encoder_input(w.power, bundle.normalization, fe.clip_below, fe.clip_above)
                     for w in source_windows(bundle, path)]).astype(np.float32)


def _file_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def _save(path: Path, array: np.ndarray) -> None:
    """Write atomically: a Ctrl-C never leaves half a cache file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


class ClipCache:
    """Windows (per front end) and embeddings (per model) of each clip, under ``directory``; a clip is known by
    its path, size and modification time, so an edited or replaced file is computed again."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def frontend_key(bundle: Bundle) -> str:
        settings = {**bundle.manifest["frontend"], "hop_seconds": bundle.hop_seconds}
        return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def _windows_path(self, bundle: Bundle, path: Path) -> Path:
        return self.directory / f"{_file_key(path)}-windows-{self.frontend_key(bundle)}.npy"

    def windows(self, bundle: Bundle, path: Path) -> np.ndarray:
        """:func:`clip_windows`, cached."""
        cached = self._windows_path(bundle, path)
        if cached.is_file():
            return np.load(cached)
        windows = clip_windows(bundle, path)
        _save(cached, windows)
        return windows

    def embeddings(self, bundle: Bundle, encoder: Encoder, path: Path) -> np.ndarray:
        """The clip's window embeddings [shape=(n, D)] from ``encoder`` (the bundle's model), cached (the windows
        are reused when cached, not stored)."""
        key = f"{_file_key(path)}-embeddings-{bundle.manifest['sha256'][:12]}-{self.frontend_key(bundle)}"
        cached = self.directory / f"{key}.npy"
        if cached.is_file():
            return np.load(cached)
        windows_path = self._windows_path(bundle, path)
        windows = np.load(windows_path) if windows_path.is_file() else clip_windows(bundle, path)
        embeddings = np.stack([encoder(w).embedding for w in windows])
        _save(cached, embeddings)
        return embeddings
