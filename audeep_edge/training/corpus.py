"""An unlabelled training corpus on disk: every file's log mel frames in one memory-mapped array.

Training on hours of audio must not need them in memory, nor decode audio every epoch. ``build_corpus`` runs each
file once through the streaming front end (the device's: ``StreamingFrontend`` after ``mix`` and resampling) and
appends its frames, in dB of the front end's absolute power (``power_db``), to ``frames.f16`` (float16, shape (total, bands));
``index.json`` keeps each file's row range and source. :class:`Corpus` maps the array read-only and draws random
windows of T frames from it, so memory stays at one batch whatever the corpus size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from audeep_edge.errors import AudeepError, DataError
from audeep_edge.features.config import FrontendConfig
from audeep_edge.features.normalize import FLOOR_DB, power_db

log = logging.getLogger(__name__)

FRAMES_FILE = "frames.f16"
INDEX_FILE = "index.json"
#: The front end of the default corpus (and so of the ``general`` bundles); a corpus needs ``sample_rate`` and
#: ``mel_bands`` set.
CORPUS_FRONTEND = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=128, sample_rate=44100)


def file_frames(path: Path, spec: FrontendConfig) -> np.ndarray:
    """(T, bands) float16 dB frames of one audio file through the streaming front end."""
    from audeep_edge.audio import mix
    from audeep_edge.audio.io import read_audio
    from audeep_edge.audio.resample import resample
    from audeep_edge.features import StreamingFrontend

    samples, fs = read_audio(path)
    x = resample(mix(samples, spec.channels), fs, spec.sample_rate)
    frontend = StreamingFrontend(spec.geometry(spec.sample_rate), spec.mel_bands, spec.pre_emphasis)
    return power_db(frontend.push(x)).astype(np.float16)


def _frames_or_none(job: tuple[Path, FrontendConfig]) -> tuple[Path, np.ndarray | None, str]:
    path, spec = job
    try:
        return path, file_frames(path, spec), ""
    except AudeepError as exc:
        return path, None, str(exc)


def audio_files(roots: list[Path]) -> list[Path]:
    """Every audio file under ``roots`` (the formats ``preprocess`` reads), sorted per root."""
    from audeep_edge.dataset.parsers.base import audio_files as folder_audio

    return [p for root in roots for p in folder_audio(root, recursive=True)]


def build_corpus(sources: dict[str, list[Path]], out: Path, spec: FrontendConfig = CORPUS_FRONTEND,
                 workers: int = 2) -> dict:
    """Compute and store the frames of every file of every named source (``{"0ad (CC BY-SA 3.0)": [...]}``).

    Unreadable files are skipped with a warning. Returns the index (also written to ``out/index.json``).
    """
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(path, spec) for files in sources.values() for path in files]
    source_of = {path: name for name, files in sources.items() for path in files}
    entries, total = [], 0
    with open(out / FRAMES_FILE, "wb") as sink, ProcessPoolExecutor(workers) as pool:
        for path, frames, problem in pool.map(_frames_or_none, jobs, chunksize=8):
            if frames is None or len(frames) == 0:
                log.warning("skipped %s: %s", path, problem or "shorter than one frame")
                continue
            sink.write(frames.tobytes())
            entries.append({"file": str(path), "source": source_of[path], "start": total, "frames": len(frames)})
            total += len(frames)
    index = {"frontend": spec.to_dict(), "frames": total, "floor_db": FLOOR_DB, "files": entries}
    (out / INDEX_FILE).write_text(json.dumps(index, indent=1))
    hours = total * (spec.window_width - spec.window_overlap) / 3600
    log.info("%d files, %d frames (%.2f h) in %s", len(entries), total, hours, out)
    return index


class Corpus:
    """A built corpus, memory-mapped. ``frames`` (total, bands) float16 dB."""

    def __init__(self, directory: Path) -> None:
        try:
            self.index = json.loads((directory / INDEX_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{directory}: not a corpus ({exc})") from None
        bands = self.index["frontend"]["mel_bands"]
        self.frames = np.memmap(directory / FRAMES_FILE, dtype=np.float16, mode="r",
                                shape=(self.index["frames"], bands))
        #: the floor the frames were computed with (FLOOR_DB then; a corpus keeps its own)
        self.floor_db = float(self.index.get("floor_db", FLOOR_DB))
        self.starts = np.array([f["start"] for f in self.index["files"]])
        self.lengths = np.array([f["frames"] for f in self.index["files"]])

    @property
    def frontend(self) -> FrontendConfig:
        """The front end the corpus was computed with."""
        return FrontendConfig.from_dict(self.index["frontend"])

    @property
    def hours(self) -> float:
        """Audio the corpus holds, in hours of frame hops."""
        fe = self.index["frontend"]
        return self.index["frames"] * (fe["window_width"] - fe["window_overlap"]) / 3600

    def window(self, file: int, offset: int, length: int) -> np.ndarray:
        """(length, bands) float32 frames of one file from ``offset``; a short file is padded with the floor."""
        start = self.starts[file] + offset
        take = min(length, self.lengths[file] - offset)
        out = np.full((length, self.frames.shape[1]), self.floor_db, dtype=np.float32)
        out[:take] = self.frames[start:start + take]
        return out

    def batches(self, batch_size: int, length: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Endless (batch_size, length, bands) float32 batches of random windows.

        Files are drawn in proportion to their windows (at least one), offsets uniformly, so every frame is about
        equally likely to be seen whatever the file lengths.
        """
        weights = np.maximum(self.lengths - length + 1, 1).astype(np.float64)
        weights /= weights.sum()
        while True:
            files = rng.choice(len(weights), size=batch_size, p=weights)
            offsets = rng.integers(0, np.maximum(self.lengths[files] - length + 1, 1))
            yield np.stack([self.window(f, o, length) for f, o in zip(files, offsets)])
