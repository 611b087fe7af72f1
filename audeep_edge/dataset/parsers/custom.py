"""Adapter for user-supplied parser classes (ours or auDeep's parser interface)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audeep_edge.dataset.parsers.base import Instance, Parser
from audeep_edge.errors import ConfigError, DataError


def _plain(value: Any) -> Any:
    """auDeep parsers return enums (Split, Partition); keep their integer value."""
    return getattr(value, "value", value)


def as_instance(item: Any, basedir: Path) -> Instance:
    """An :class:`Instance` from our Instance or auDeep's ``_ParserInstance`` (path, filename, label_nominal,
    label_numeric, cv_folds, partition)."""
    path = Path(item.path)
    folds = tuple(int(_plain(s)) for s in (getattr(item, "cv_folds", None) or ()))
    partition = _plain(getattr(item, "partition", None))
    label = getattr(item, "label_nominal", None)
    return Instance(path if path.is_absolute() else basedir / path, str(item.filename),
                    None if label is None else str(label), folds, None if partition is None else int(partition))


class CustomParser(Parser):
    """Wraps an instance of a user class built with the base directory."""

    def __init__(self, cls: type, basedir: str | Path, spec: str) -> None:
        super().__init__(basedir)
        self.name = spec
        try:
            self.inner = cls(self.basedir)
        except Exception as exc:  # user code
            raise ConfigError(f"--parser {spec!r}: cannot create {cls.__name__}({self.basedir}) "
                              f"({type(exc).__name__}: {exc})") from None
        if not callable(getattr(self.inner, "parse", None)):
            raise ConfigError(f"--parser {spec!r}: {cls.__name__} has no parse() method")

    def can_parse(self) -> bool:
        check = getattr(self.inner, "can_parse", None)
        return bool(check()) if callable(check) else True

    @property
    def label_map(self) -> dict[str, int] | None:
        value = getattr(self.inner, "label_map", None)
        value = value() if callable(value) else value
        return None if value is None else {str(k): int(v) for k, v in dict(value).items()}

    @property
    def num_folds(self) -> int:
        value = getattr(self.inner, "num_folds", 0)
        return int(value() if callable(value) else value)

    def parse(self) -> list[Instance]:
        if not self.can_parse():
            raise self.refuse("its can_parse() returned False")
        try:
            items = list(self.inner.parse())
            return [as_instance(item, self.basedir) for item in items]
        except DataError:
            raise
        except Exception as exc:  # user code
            raise DataError(f"{self.basedir}: parser {self.name} failed ({type(exc).__name__}: {exc})") from None
