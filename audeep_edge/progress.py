"""Progress on stderr for the long steps of a command: a bar for counted work, a spinner with the elapsed time
for one long call. Shown on a terminal only and not with ``-q``; nothing is written when output is redirected."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _hidden(console) -> bool:
    return logging.getLogger().getEffectiveLevel() > logging.INFO or not console.is_terminal


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[], None]]:
    """A bar over ``total`` items; yields ``advance()``, to call once per item done.

    Refreshed from ``advance`` only (no refresh thread), so worker processes are never forked while
    another thread holds a console lock.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = _console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=_hidden(console), transient=True, auto_refresh=False) as bar:
        task = bar.add_task(description, total=total)

        def advance() -> None:
            bar.advance(task)
            bar.refresh()

        yield advance


@contextmanager
def spinner(description: str) -> Iterator[None]:
    """A spinner with the elapsed seconds while one long call runs (a conversion, a child process)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = _console()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  disable=_hidden(console), transient=True) as bar:
        bar.add_task(description, total=None)
        yield
