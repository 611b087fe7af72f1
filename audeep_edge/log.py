"""Logging set-up shared by every command: ``[LEVEL] logger - message`` as auDeep prints it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "[%(levelname)s] %(name)s - %(message)s"


class ConsoleHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is when a record is emitted, not when it was set up:
    a thread that logs after stderr was replaced (a test's capture, a redirect) never writes to a closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbosity: int = 1, log_file: Path | None = None) -> None:
    """Configure the root logger.

    Parameters
    ----------
    verbosity : 0 (quiet: warnings only), 1 (info, default) or 2 (debug).
    log_file : optional file that receives the same records at debug level.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG if log_file else level)
    console = ConsoleHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(console)
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(asctime)s " + FORMAT))
        root.addHandler(handler)
    for noisy in ("matplotlib", "PIL", "absl", "h5py", "amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def console_quiet() -> bool:
    """True when the console shows warnings and errors only (``-q``)."""
    return any(isinstance(handler, ConsoleHandler) and handler.level > logging.INFO
               for handler in logging.getLogger().handlers)
