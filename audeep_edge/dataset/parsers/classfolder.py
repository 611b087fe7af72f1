"""``DIR/<label>/*.wav``: one folder of clips per class, the most common layout of one's own recordings.

Without folds in the layout, clips are dealt to K stratified folds so that clips cut from one source recording
stay in one fold (:func:`source_id` reads the recording from the file name), else cross-validation would score
a clip against its own neighbours.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from audeep_edge.dataset.parsers.base import Instance, Parser, alphabetical_label_map, audio_files, is_audio, \
    visible_dirs

log = logging.getLogger(__name__)

#: ESC-style names ``<fold>-<source id>-<take>[-<class>]`` (``1-100032-A-0.wav``): the Freesound id is the recording.
ESC_NAME = re.compile(r"^\d+-(?P<source>[0-9A-Za-z]+)-[A-Za-z]+(?:-\d+)?$")
#: A trailing clip index after ``-``, ``_`` or a space (``kitchen_03``, ``street-rec-2``): the rest is the recording.
TRAILING_INDEX = re.compile(r"^(?P<source>.+?)[-_ ]\d+$")
MAX_FOLDS = 5


def source_id(stem: str) -> str:
    """The source recording a clip's file name (without suffix) points to; the stem itself when it shows none."""
    match = ESC_NAME.match(stem) or TRAILING_INDEX.match(stem)
    return match.group("source") if match else stem


def stratified_group_folds(labels: Sequence[str], groups: Sequence[str], max_folds: int = MAX_FOLDS
                           ) -> tuple[int, list[int]]:
    """Deal items to K folds, each class spread evenly, the items of one group in one fold.

    Parameters
    ----------
    labels, groups : (N,) class and source recording of each item; groups are taken within a class. A class
        whose items all share one group is split by item (its names show no separate recordings).
    max_folds : K is at most this, and at most the number of groups of the smallest class.

    Returns
    -------
    (K, fold of each item, 0..K-1); K = 0 when a class has a single item (no cross-validation possible).
    """
    members: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (label, group) in enumerate(zip(labels, groups)):
        members[label][group].append(index)
    for label, by_group in members.items():
        if len(by_group) == 1 and len(next(iter(by_group.values()))) > 1:
            log.info("class %s: all clips look like one recording by name; folds split it clip by clip", label)
            members[label] = {str(i): [i] for i in next(iter(by_group.values()))}
    k = min([max_folds, *(len(by_group) for by_group in members.values())])
    if k < 2:
        return 0, [0] * len(labels)
    folds = [0] * len(labels)
    totals = [0] * k
    for label in sorted(members):
        in_class = [0] * k
        for group in sorted(members[label], key=lambda g: (-len(members[label][g]), g)):
            items = members[label][group]
            fold = min(range(k), key=lambda f: (in_class[f], totals[f], f))
            for i in items:
                folds[i] = fold
            in_class[fold] += len(items)
            totals[fold] += len(items)
    return k, folds


def with_recording_folds(instances: list[Instance], max_folds: int = MAX_FOLDS) -> tuple[list[Instance], int]:
    """The labelled ``instances`` with K folds by :func:`stratified_group_folds` over their labels and
    :func:`source_id`, each instance VALID in one of them (``cv_folds`` ``()`` when K = 0); and K."""
    k, folds = stratified_group_folds([i.label_nominal for i in instances], [source_id(i.path.stem) for i in instances],
                                      max_folds)
    return [replace(i, cv_folds=tuple(1 if j == fold else 0 for j in range(k))) for i, fold in zip(instances, folds)], k


class ClassFolderParser(Parser):
    """Top-level folders are classes (label = folder name); their audio files, found recursively, are the clips.

    Folds: :func:`with_recording_folds` (up to ``max_folds``); filename = ``<class>/<path in the class folder>``.
    Audio files directly in the base directory have no class and are left out. Tried last by auto-detection, so
    the layouts with their own metadata (ESC, partitioned, ...) win.
    """

    name = "class-folders"

    def __init__(self, basedir: str | Path, max_folds: int = MAX_FOLDS) -> None:
        super().__init__(basedir)
        self.max_folds = max_folds
        self._parsed: tuple[list[Instance], int] | None = None

    def _class_dirs(self) -> list[Path]:
        if not self.basedir.is_dir():
            return []
        return [d for d in visible_dirs(self.basedir) if audio_files(d, recursive=True)]

    def can_parse(self) -> bool:
        return bool(self._class_dirs())

    @property
    def label_map(self) -> dict[str, int]:
        return alphabetical_label_map(d.name for d in self._class_dirs())

    @property
    def num_folds(self) -> int:
        return self._parse()[1]

    def parse(self) -> list[Instance]:
        return self._parse()[0]

    def _parse(self) -> tuple[list[Instance], int]:
        if self._parsed is not None:
            return self._parsed
        if not self.can_parse():
            raise self.refuse("expected one folder of audio files per class, e.g. DIR/rain/*.wav")
        loose = [p for p in self.basedir.iterdir() if is_audio(p)]
        if loose:
            log.warning("%s: %d audio file(s) outside the class folders have no label and are left out (e.g. %s)",
                        self.basedir, len(loose), loose[0].name)
        clips = [Instance(f, f.relative_to(self.basedir).as_posix(), d.name)
                 for d in self._class_dirs() for f in audio_files(d, recursive=True)]
        self._parsed = with_recording_folds(clips, self.max_folds)
        return self._parsed
