"""``train/``, ``devel/``, ``test/`` directories, each holding one directory per class."""

from __future__ import annotations

from pathlib import Path

from audeep_edge.dataset.model import PARTITIONS
from audeep_edge.dataset.parsers.base import Instance, Parser, alphabetical_label_map, audio_files, visible_dirs


def class_dirs_with_audio(directory: Path) -> list[Path] | None:
    """The class directories of ``directory`` if there is at least one and each holds audio; else None."""
    dirs = visible_dirs(directory)
    if not dirs or not all(audio_files(d) for d in dirs):
        return None
    return dirs


class PartitionedParser(Parser):
    """At least one of ``train/ devel/ test/``; inside, class directories of audio files.

    Labels: class directory names, numbered alphabetically over all partitions; partition from the top
    directory; no folds; filename = ``<partition>/<class>/<file>``. Order: train, devel, test, then sorted
    classes and files.
    """

    name = "partitioned"

    def _partition_dirs(self) -> list[tuple[int, Path]]:
        return [(code, self.basedir / name) for code, name in enumerate(PARTITIONS)
                if (self.basedir / name).is_dir()]

    def can_parse(self) -> bool:
        parts = self._partition_dirs()
        return bool(parts) and all(class_dirs_with_audio(d) is not None for _, d in parts)

    @property
    def label_map(self) -> dict[str, int]:
        return alphabetical_label_map(c.name for _, d in self._partition_dirs() for c in visible_dirs(d))

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("expected train/, devel/ or test/ holding one directory of audio files per class")
        return [Instance(f, f.relative_to(self.basedir).as_posix(), c.name, (), code)
                for code, d in self._partition_dirs() for c in visible_dirs(d) for f in audio_files(c)]
