"""A value loaded from a file and loaded again when the file changes, for a ``listen`` that runs for months
while ``audeep-edge enroll`` or ``baseline fit`` rewrite the bundle's extras (they replace files atomically)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Generic, TypeVar

from audeep_edge.errors import AudeepError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Reloading(Generic[T]):
    """``value`` = ``load()``, refreshed by :meth:`poll` when ``path`` changed (mtime or size, or appeared/vanished).

    Parameters
    ----------
    path : the watched file.
    load : reads the file (and returns whatever stands for "absent" when it does not exist).
    interval : seconds between two checks of the file, so polling every window costs nothing.

    Raises
    ------
    AudeepError : from the first ``load()``; later failures keep the previous value with a warning.
    """

    def __init__(self, path: str | Path, load: Callable[[], T], *, interval: float = 2.0) -> None:
        self.path = Path(path)
        self._load = load
        self._interval = interval
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self.value: T = load()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def poll(self, force: bool = False) -> bool:
        """Reload if the file changed since the last check (or ``force``); True when ``value`` was replaced."""
        now = time.monotonic()
        if not force and now - self._checked < self._interval:
            return False
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp and not force:
            return False
        self._stamp = stamp
        try:
            self.value = self._load()
        except AudeepError as exc:
            log.warning("%s changed but cannot be read; keeping the previous one: %s", self.path.name, exc)
            return False
        log.info("reloaded %s", self.path)
        return True
