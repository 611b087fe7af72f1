"""What ``train`` tells its user: the confusion matrix (text and PNG) and the bundle's model card."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CONFUSION_PNG = "confusion.png"
MODEL_CARD = "MODEL_CARD.md"


def confusion_text(confusion: np.ndarray, labels: list[str]) -> str:
    """The matrix as aligned text: one row per true class, one column per predicted class (clip counts)."""
    corner = "true \\ predicted"
    width = max(len(corner), *(len(label) for label in labels))
    cells = [max(len(label), len(str(confusion.max()))) for label in labels]
    lines = [f"{corner:<{width}}  " + "  ".join(f"{label:>{w}}" for label, w in zip(labels, cells))]
    lines += [f"{label:<{width}}  " + "  ".join(f"{n:>{w}}" for n, w in zip(row, cells))
              for label, row in zip(labels, confusion)]
    return "\n".join(lines)


def confusion_png(confusion: np.ndarray, labels: list[str], path: Path, title: str) -> Path | None:
    """Draw the matrix with matplotlib (in the ``[train]`` extra); None, with a note, where it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed (pip install 'audeep-edge[train]'): no %s", path.name)
        return None
    size = 2.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    ax.imshow(confusion, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    threshold = confusion.max() / 2
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(col, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def model_card(facts: dict) -> str:
    """``MODEL_CARD.md`` of a trained bundle from the ``training`` record of its ``bundle.json``."""
    clips = ", ".join(f"{label} ({n} clips)" for label, n in facts["clips_per_label"].items())
    encoder = facts["encoder"]
    rows = [
        ("labels", clips),
        ("data", f"{facts['dataset']}: {sum(facts['clips_per_label'].values())} labelled clips, "
                 f"{facts['audio_seconds'] / 60:.1f} min of audio; licence: {facts['license']}"),
        ("encoder", encoder["description"]),
        ("head", facts["head"]),
        ("accuracy", f"{100 * facts['accuracy']:.1f} % ({facts['accuracy_data']}); confusion matrix: "
                     f"{CONFUSION_PNG}"),
        ("date", facts["date"]),
        ("made with", f"audeep-edge {facts['audeep_edge']}: `{facts['command']}`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (f"# {facts['name']}\n\n| | |\n|---|---|\n{table}\n\n"
            "Limits: the head knows only these labels, so any other sound gets one of them anyway; "
            "`audeep-edge baseline fit` flags the unfamiliar and `audeep-edge enroll` adds labels on the device.\n")
