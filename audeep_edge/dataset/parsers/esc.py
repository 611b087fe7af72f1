"""ESC-10 / ESC-50 in the original repository layout: ``NNN - Class name/F-ID-T.ogg`` (OGG or WAV)."""

from __future__ import annotations

import re
from pathlib import Path

from audeep_edge.dataset.parsers.base import Instance, Parser, is_audio, visible_dirs

CLASS_DIR = re.compile(r"^\d{3} - .+")
CLIP_FILE = re.compile(r"^([1-5])-.*\.(ogg|wav)$", re.IGNORECASE)
NUM_FOLDS = 5


class ESCParser(Parser):
    """Class directories ``^\\d{3} - .+`` holding clips whose name starts with the fold digit 1-5.

    Label = directory name from character 6 on; numeric label = index of the directory in sorted order;
    5 folds: a clip whose name starts with ``d-`` is VALID in fold d, TRAIN in the others; the stored
    filename is the bare file name. Unlike auDeep, files are sorted within a class, WAV is accepted as
    well as OGG, and a directory without class directories is not an ESC data set.
    """

    name = "esc"

    def _class_dirs(self) -> list[Path]:
        return visible_dirs(self.basedir) if self.basedir.is_dir() else []

    @staticmethod
    def _clips(class_dir: Path) -> list[Path]:
        return sorted(p for p in class_dir.iterdir() if is_audio(p) and CLIP_FILE.match(p.name))

    def can_parse(self) -> bool:
        dirs = self._class_dirs()
        if not dirs or not all(CLASS_DIR.match(d.name) for d in dirs):
            return False
        for d in dirs:
            visible = [p for p in d.iterdir() if not p.name.startswith(".")]
            if not visible or len(self._clips(d)) != len(visible):
                return False
        return True

    @property
    def label_map(self) -> dict[str, int]:
        return {d.name[6:]: i for i, d in enumerate(self._class_dirs())}

    @property
    def num_folds(self) -> int:
        return NUM_FOLDS

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("expected directories like '001 - Dog bark' holding only clips named "
                              "'<fold 1-5>-<id>.ogg|wav'")
        instances = []
        for d in self._class_dirs():
            for clip in self._clips(d):
                fold = int(CLIP_FILE.match(clip.name).group(1)) - 1
                folds = tuple(1 if k == fold else 0 for k in range(NUM_FOLDS))
                instances.append(Instance(clip, clip.name, d.name[6:], folds))
        return instances
