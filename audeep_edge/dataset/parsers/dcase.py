"""DCASE 2017 Task 1 (TUT Acoustic Scenes 2017, development set)."""

from __future__ import annotations

import csv
from pathlib import Path

from audeep_edge.dataset.parsers.base import Instance, Parser

SCENES = ("beach", "bus", "cafe/restaurant", "car", "city_center", "forest_path", "grocery_store", "home",
          "library", "metro_station", "office", "park", "residential_area", "train", "tram")
NUM_FOLDS = 4


def read_tsv(path: Path) -> list[list[str]]:
    """Rows of a tab-separated file without header, blank lines skipped, cells stripped."""
    with path.open(newline="", encoding="utf-8") as f:
        return [[c.strip() for c in row] for row in csv.reader(f, delimiter="\t") if row and row[0].strip()]


class DCASEParser(Parser):
    """``meta.txt`` (``audio/x.wav<TAB>label``) and ``evaluation_setup/fold{1..4}_train.txt``.

    Fixed 15-scene label map (alphabetical); 4 folds: listed in ``foldN_train.txt`` = TRAIN, else VALID;
    filename = the bare audio file name; order of ``meta.txt``.
    """

    name = "dcase"
    label_map = {name: i for i, name in enumerate(SCENES)}

    def _fold_file(self, k: int) -> Path:
        return self.basedir / "evaluation_setup" / f"fold{k}_train.txt"

    def can_parse(self) -> bool:
        return (self.basedir / "meta.txt").is_file() and all(
            self._fold_file(k).is_file() for k in range(1, NUM_FOLDS + 1))

    @property
    def num_folds(self) -> int:
        return NUM_FOLDS

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("expected meta.txt and evaluation_setup/fold1..4_train.txt")
        train_sets = [{row[0] for row in read_tsv(self._fold_file(k))} for k in range(1, NUM_FOLDS + 1)]
        instances = []
        for row in read_tsv(self.basedir / "meta.txt"):
            if len(row) < 2:
                raise self.refuse(f"meta.txt line {row!r} has no label column")
            rel, label = row[0], row[1]
            if label not in self.label_map:
                raise self.refuse(f"meta.txt: unknown scene {label!r}")
            folds = tuple(0 if rel in train else 1 for train in train_sets)
            instances.append(Instance(self.basedir / rel, Path(rel).name, label, folds))
        return instances
