"""How long and how much history to keep: ``--keep 30d`` and ``--max-size 2GB``, enforced while recording."""

from __future__ import annotations

import re
from dataclasses import dataclass

from audeep_edge.errors import ConfigError

SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
AGE_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MIN_SIZE = 1 << 20


@dataclass(frozen=True)
class Retention:
    """max_age_s : history older than this is deleted (None: kept).
    max_bytes : past this the oldest history is deleted down to 90 % of it (None: no bound).
    interval_s : how often both are enforced.
    """

    max_age_s: float | None = None
    max_bytes: int | None = None
    interval_s: float = 60.0


def parse_size(text: str, option: str = "--max-size") -> int:
    """``"500MB"``, ``"2GiB"``, ``"1e9"`` -> bytes (at least 1 MiB)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in SIZE_UNITS:
        raise ConfigError(f"{option} {text!r}: expected a size like 500MB or 2GiB")
    size = int(float(match.group(1)) * SIZE_UNITS[unit])
    if size < MIN_SIZE:
        raise ConfigError(f"{option} {text!r}: expected at least 1 MiB")
    return size


def parse_age(text: str, option: str = "--keep") -> float:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"90min"`` -> seconds (more than 0)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-z]+)\s*", text)
    if match is None or match.group(2) not in AGE_UNITS or float(match.group(1)) <= 0:
        raise ConfigError(f"{option} {text!r}: expected an age like 30d, 12h, 2w or 90min")
    return float(match.group(1)) * AGE_UNITS[match.group(2)]


def retention_from(keep: str | None, max_size: str | None) -> Retention:
    """The retention that the ``--keep`` and ``--max-size`` options ask for (None: unbounded)."""
    return Retention(max_age_s=None if keep is None else parse_age(keep),
                     max_bytes=None if max_size is None else parse_size(max_size))
