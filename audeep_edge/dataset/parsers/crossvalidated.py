"""``fold_1/ ... fold_K/`` directories, each holding one directory per class."""

from __future__ import annotations

import re
from pathlib import Path

from audeep_edge.dataset.parsers.base import Instance, Parser, alphabetical_label_map, audio_files, visible_dirs
from audeep_edge.dataset.parsers.partitioned import class_dirs_with_audio

FOLD_DIR = re.compile(r"^fold_(\d+)$")


class CrossValidatedParser(Parser):
    """At least two directories ``fold_<N>`` numbered exactly 1..K, each with class directories of audio.

    Labels numbered alphabetically over all folds; K folds, the files of ``fold_k`` are VALID in fold k and
    TRAIN in the others; filename = ``fold_<k>/<class>/<file>``. Unlike auDeep this layout works through
    the CLI, and folds are ordered numerically (fold_10 after fold_9).
    """

    name = "cross-validated"

    def _fold_dirs(self) -> list[Path]:
        if not self.basedir.is_dir():
            return []
        folds = {int(m.group(1)): d for d in visible_dirs(self.basedir) if (m := FOLD_DIR.match(d.name))}
        return [folds[k] for k in sorted(folds)] if sorted(folds) == list(range(1, len(folds) + 1)) else []

    def can_parse(self) -> bool:
        folds = self._fold_dirs()
        return len(folds) >= 2 and all(class_dirs_with_audio(d) is not None for d in folds)

    @property
    def label_map(self) -> dict[str, int]:
        return alphabetical_label_map(c.name for d in self._fold_dirs() for c in visible_dirs(d))

    @property
    def num_folds(self) -> int:
        return len(self._fold_dirs())

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("expected fold_1/ .. fold_K/ (K >= 2) holding one directory of audio files per class")
        folds = self._fold_dirs()
        return [Instance(f, f.relative_to(self.basedir).as_posix(), c.name,
                         tuple(1 if j == k else 0 for j in range(len(folds))))
                for k, d in enumerate(folds) for c in visible_dirs(d) for f in audio_files(c)]
