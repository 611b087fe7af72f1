"""Keep LiteRT's native log chatter off stderr while passing everything else through as it is written.

LiteRT's ``Environment`` prints ~20 ``INFO:``/``WARNING:`` lines (accelerator registry, a missing OpenVINO plugin)
when it is created and destroyed, with no switch to turn them off. While :func:`native_stderr_filtered` is
active, file descriptor 2 is a pipe to a small filter process that drops those lines and writes every other line
to the real stderr at once. The filter is a separate process so that a native abort still explains itself:
LiteRT's ``FATAL ERROR: ...`` written just before the process dies is drained and shown after the death.
With debug output on the console (``-v``), nothing is filtered.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: LiteRT's routine log lines ("INFO: [environment.cc:36] ...", "WARNING: [npu_registry.cc:34] ..."), and the
#: "└ ..." continuation of one. ERROR and FATAL lines always pass.
NATIVE_NOISE = r"^(INFO|VERBOSE|DEBUG|WARNING): (\[[\w./-]+:\d+\] |Created TensorFlow Lite)"
CONTINUATION = "└ "

# The filter process: stdin is the pipe, stderr the original one; it ends when the last writer closes the pipe.
_FILTER = """
import os, re, sys
noise, continuation = re.compile(sys.argv[1].encode()), sys.argv[2].encode()
pending, hidden = b"", False
while chunk := os.read(0, 65536):
    *lines, pending = (pending + chunk).split(b"\\n")
    for line in lines:
        hidden = noise.match(line) is not None or (hidden and line.startswith(continuation))
        if not hidden:
            os.write(2, line + b"\\n")
if pending:
    os.write(2, pending)
"""

_filter: list[subprocess.Popen] = []  # the filter process, once started


def _filter_pipe() -> int:
    """The write end of the filter process's stdin, started on first use (one per process, its own session so
    that Ctrl-C reaches only this one)."""
    if not _filter:
        sys.stderr.flush()
        _filter.append(subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, NATIVE_NOISE, CONTINUATION],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True))
        atexit.register(_filter_at_exit)
    return _filter[0].stdin.fileno()


def _debug_on_console() -> bool:
    """Whether debug records reach a console handler (``-v``), not only a ``--log-file``."""
    root = logging.getLogger()
    return log.isEnabledFor(logging.DEBUG) and any(
        handler.level <= logging.DEBUG and not isinstance(handler, logging.FileHandler) for handler in root.handlers)


@contextlib.contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Route file descriptor 2 through the filter meanwhile (not at all with debug output on the console)."""
    if _debug_on_console():
        yield
        return
    pipe = _filter_pipe()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(pipe, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _filter_at_exit() -> None:
    """LiteRT's accelerator registry is a C++ static that logs its teardown after Python has finished: send file
    descriptor 2 through the filter for good once Python's own stderr is flushed."""
    sys.stderr.flush()
    os.dup2(_filter_pipe(), 2)
