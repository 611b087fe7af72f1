"""What ``train`` writes for its user besides the model: ``confusion.png`` and the bundle's model card."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from audeep_edge.training.confusion import plot_confusion

log = logging.getLogger(__name__)

CONFUSION_PNG = "confusion.png"
MODEL_CARD = "MODEL_CARD.md"


def confusion_png(confusion: np.ndarray, labels: list[str], path: Path, title: str) -> Path | None:
    """Draw the (C, C) clip counts; None, with a note, where matplotlib (in the ``[train]`` extra) is not installed."""
    try:
        plot_confusion(path, confusion, labels, title)
    except ImportError:
        log.info("matplotlib is not installed (pip install 'audeep-edge[train]'): no %s", path.name)
        return None
    return path


def _head_input(facts: dict) -> str:
    """Which part of the embedding the head reads, for encoders side by side."""
    scores = facts.get("accuracy_by_head_input")
    if not scores:
        return ""
    chosen = facts["head_input"]
    reads = "all of the embedding" if chosen == "all" else f"the {chosen} part of the embedding"
    tried = ", ".join(f"{name} {100 * accuracy:.1f} %" for name, accuracy in scores.items())
    return f"; it reads {reads}, the best in cross-validation ({tried}; so the accuracy below is mildly optimistic)"


def model_card(facts: dict) -> str:
    """``MODEL_CARD.md`` of a trained bundle from the ``training`` record of its ``bundle.json``."""
    clips = ", ".join(f"{label} ({n} clips)" for label, n in facts["clips_per_label"].items())
    encoder = facts["encoder"]
    rows = [
        ("labels", clips),
        ("data", f"{facts['dataset']}: {sum(facts['clips_per_label'].values())} labelled clips, "
                 f"{facts['audio_seconds'] / 60:.1f} min of audio; licence: {facts['license']}"),
        ("encoder", encoder["description"]),
        ("head", facts["head"] + _head_input(facts)),
        ("accuracy", f"{100 * facts['accuracy']:.1f} % ({facts['accuracy_data']}); confusion matrix: "
                     f"{CONFUSION_PNG}"),
        ("date", facts["date"]),
        ("made with", f"audeep-edge {facts['audeep_edge']}: `{facts['command']}`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (f"# {facts['name']}\n\n| | |\n|---|---|\n{table}\n\n"
            "Limits: the head knows only these labels, so any other sound gets one of them anyway; "
            "`audeep-edge baseline fit` flags the unfamiliar and `audeep-edge enroll` adds labels on the device.\n")
