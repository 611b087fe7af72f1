"""One doctor check's outcome and the table that lists them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    """``name`` (what was looked at), ``status`` (OK, WARN or FAIL) and a one-line ``detail``."""

    name: str
    status: str
    detail: str

    def __post_init__(self) -> None:
        if self.status not in (OK, WARN, FAIL):
            raise ValueError(f"status must be OK, WARN or FAIL, got {self.status!r}")
        object.__setattr__(self, "detail", " ".join(self.detail.split()))  # one line, always


def format_table(checks: Iterable[Check]) -> str:
    """Checks as aligned ``CHECK  STATUS  DETAIL`` rows with a closing count of warnings and failures."""
    checks = list(checks)
    width = max([len("check"), *(len(c.name) for c in checks)])
    lines = [f"{'check':<{width}}  status  detail"]
    lines += [f"{c.name:<{width}}  {c.status:<6}  {c.detail}" for c in checks]
    warnings, failures = (sum(c.status == s for c in checks) for s in (WARN, FAIL))
    lines.append(f"{failures} failure(s), {warnings} warning(s)")
    return "\n".join(lines)
