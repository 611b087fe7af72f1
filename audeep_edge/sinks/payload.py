"""JSON encoding shared by every sink: compact, strict JSON (no ``NaN``), numpy values accepted."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

SCHEMA_VERSION = 1


def _numpy_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN/Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return _finite(_numpy_default(value))
    return value


def to_json(payload: dict[str, Any]) -> str:
    """Encode ``payload`` as one line of strict JSON.

    numpy scalars and arrays become plain numbers and lists; ``NaN``/``Infinity`` become ``null``
    (the common case, all finite, is encoded in a single pass).
    """
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_numpy_default)
    except ValueError:
        return json.dumps(_finite(payload), separators=(",", ":"), allow_nan=False, default=_numpy_default)
