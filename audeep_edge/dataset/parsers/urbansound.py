"""UrbanSound8K: ``audio/fold<k>/<file>`` and ``metadata/UrbanSound8K.csv``."""

from __future__ import annotations

import csv

from audeep_edge.dataset.parsers.base import Instance, Parser

COLUMNS = ("slice_file_name", "fold", "classID", "class")
NUM_FOLDS = 10


class UrbanSound8KParser(Parser):
    """Labels and the class map from the CSV's ``class``/``classID``; 10 folds from ``fold`` (VALID in
    that fold); filename = ``slice_file_name``; order of the CSV."""

    name = "urbansound8k"

    @property
    def _csv(self):
        return self.basedir / "metadata" / "UrbanSound8K.csv"

    def can_parse(self) -> bool:
        return (self.basedir / "audio").is_dir() and self._csv.is_file()

    def _rows(self) -> list[dict]:
        with self._csv.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise self.refuse(f"{self._csv.name} lacks column(s) {', '.join(missing)}")
            return list(reader)

    @property
    def label_map(self) -> dict[str, int]:
        return {row["class"]: int(row["classID"]) for row in self._rows()}

    @property
    def num_folds(self) -> int:
        return NUM_FOLDS

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("expected audio/ and metadata/UrbanSound8K.csv")
        instances = []
        for row in self._rows():
            fold = int(row["fold"])
            if not 1 <= fold <= NUM_FOLDS:
                raise self.refuse(f"{row['slice_file_name']}: fold {fold} is not 1..{NUM_FOLDS}")
            folds = tuple(1 if k == fold - 1 else 0 for k in range(NUM_FOLDS))
            path = self.basedir / "audio" / f"fold{fold}" / row["slice_file_name"]
            instances.append(Instance(path, row["slice_file_name"], row["class"], folds))
        return instances
