"""``listen`` in a terminal shows each window as it happens; logs stay on stderr; ``-q`` and pipes get no table.
The terminal is a real pseudo-terminal running the installed CLI."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time

import pytest
from stream_testing import CLI, DATA, TINY, run_cli

DOG = DATA / "esc_mini" / "001 - Dog bark" / "1-100032-A.ogg"  # 5 s: 11 windows of the tiny bundle
LISTEN = ("listen", "--file", str(DOG), "--bundle", str(TINY), "--broker", "none")
ROW = re.compile(r"\d\d:\d\d:\d\d +(\d+)  (Dog bark|Rain|Rooster) +\d+%  +-?\d+\.\d")


def run_in_terminal(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """``audeep-edge ARGS`` with stdout on a pseudo-terminal and stderr on a pipe: (status, terminal, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    shown, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=10), shown.decode(), stderr


def test_a_terminal_shows_one_row_per_window_and_no_log_lines():
    status, shown, stderr = run_in_terminal(*LISTEN)
    assert status == 0, stderr
    lines = shown.splitlines()
    assert lines[0].split() == ["time", "seq", "scene", "conf", "dBFS"]
    assert [int(ROW.fullmatch(line).group(1)) for line in lines[1:]] == list(range(11))
    assert "[INFO]" in stderr and "[INFO]" not in shown


@pytest.mark.parametrize("where", ["quiet terminal", "pipe"])
def test_quiet_or_a_pipe_gets_no_table(where):
    if where == "pipe":
        status, shown, stderr = (done := run_cli(*LISTEN)).returncode, done.stdout, done.stderr
    else:
        status, shown, stderr = run_in_terminal("-q", *LISTEN)
    assert status == 0, stderr
    assert shown == ""
