"""Any directory of audio files, without labels, folds or partitions."""

from __future__ import annotations

from audeep_edge.dataset.parsers.base import Instance, Parser, audio_files


class NoMetadataParser(Parser):
    """All audio files (wav, flac, ogg, ...) found recursively, sorted; filename = path relative to basedir.

    Never chosen automatically: select it with ``--parser no-metadata``.
    """

    name = "no-metadata"

    def can_parse(self) -> bool:
        return self.basedir.is_dir() and bool(audio_files(self.basedir, recursive=True))

    def parse(self) -> list[Instance]:
        if not self.basedir.is_dir():
            raise self.refuse("no such directory")
        files = audio_files(self.basedir, recursive=True)
        if not files:
            raise self.refuse("no audio files (wav, flac, ogg, ...) found in it or below")
        return [Instance(p, p.relative_to(self.basedir).as_posix()) for p in files]
