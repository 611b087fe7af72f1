"""Top-k labels of one window's class probabilities."""

from __future__ import annotations

import numpy as np


def top_k(probabilities: np.ndarray, labels: list[str], k: int) -> list[dict]:
    """The ``k`` most probable classes, most probable first.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(C,)], class probabilities in label order.
    labels : C class names.
    k : how many to return (at most C).

    Returns
    -------
    ``[{"label": name, "p": probability}, ...]`` as in the MQTT ``window`` payload; ties keep label order.
    """
    order = np.argsort(-probabilities, kind="stable")[: max(0, min(k, len(labels)))]
    return [{"label": labels[i], "p": round(float(probabilities[i]), 4)} for i in order]
