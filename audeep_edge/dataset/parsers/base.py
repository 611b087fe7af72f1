"""What a parser is: it recognises a directory layout and lists the audio files with their metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audeep_edge.errors import DataError

#: File extensions treated as audio (all read by libsndfile through ``audeep_edge.audio.read_audio``).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")


@dataclass(frozen=True)
class Instance:
    """One audio file of a data set.

    path : absolute path of the audio file
    filename : identifier stored in the data set (parser-specific, may contain ``/``)
    label_nominal : class name or None
    cv_folds : split per fold, 0 TRAIN / 1 VALID (empty tuple: no CV setup)
    partition : 0 TRAIN / 1 DEVEL / 2 TEST or None
    """

    path: Path
    filename: str
    label_nominal: str | None = None
    cv_folds: tuple[int, ...] = ()
    partition: int | None = None


class Parser:
    """Base class. Subclasses set ``name`` and implement ``can_parse`` and ``parse``.

    A parser is built with the data set's base directory; ``parse()`` returns the instances in a
    deterministic order and ``label_map`` maps class names to indices (None: unlabelled data).
    """

    name = "parser"

    def __init__(self, basedir: str | Path) -> None:
        self.basedir = Path(basedir).resolve()

    def can_parse(self) -> bool:
        raise NotImplementedError

    def parse(self) -> list[Instance]:
        raise NotImplementedError

    @property
    def label_map(self) -> dict[str, int] | None:
        return None

    @property
    def num_folds(self) -> int:
        return 0

    def refuse(self, why: str) -> DataError:
        """The error for a base directory this parser cannot read."""
        return DataError(f"{self.basedir}: not a {self.name} data set ({why})")


def is_audio(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in AUDIO_EXTENSIONS


def visible_dirs(directory: Path) -> list[Path]:
    """Non-hidden sub-directories, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def audio_files(directory: Path, recursive: bool = False) -> list[Path]:
    """Audio files in ``directory`` (optionally recursive), sorted by path."""
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in candidates if is_audio(p) and not any(
        part.startswith(".") for part in p.relative_to(directory).parts))


def alphabetical_label_map(names) -> dict[str, int]:
    """Class names sorted alphabetically -> 0..C-1."""
    return {name: i for i, name in enumerate(sorted(set(names)))}
