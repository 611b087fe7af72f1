"""A confusion matrix (rows: true class, columns: predicted class) as text and as a PNG, for ``mlp|svm evaluate``
and ``train``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def by_name(matrix: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The (C, C) matrix and its C class names with the classes sorted by nominal name (stable)."""
    order = np.argsort(names, kind="stable")
    return matrix[np.ix_(order, order)], [names[i] for i in order]


def numbered_confusion_text(matrix: np.ndarray, names: list[str]) -> str:
    """auDeep's table: classes sorted by nominal name, each row ``<number> <name>``, columns by number."""
    matrix, names = by_name(matrix, names)
    width = max(len(str(matrix.max())), len(str(len(names) - 1)))
    name_width = max(len(name) for name in names) + len(str(len(names) - 1)) + 1
    header = " " * name_width + " " + " ".join(f"{j:>{width}}" for j in range(len(names)))
    rows = [f"{f'{k} {name}':<{name_width}} " + " ".join(f"{v:>{width}}" for v in matrix[k])
            for k, name in enumerate(names)]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted class)", header, *rows])


def labelled_confusion_text(matrix: np.ndarray, labels: list[str]) -> str:
    """Aligned text in the given class order, with the class names as row and column headers."""
    corner = "true \\ predicted"
    width = max(len(corner), *(len(label) for label in labels))
    cells = [max(len(label), len(str(matrix.max()))) for label in labels]
    lines = [f"{corner:<{width}}  " + "  ".join(f"{label:>{w}}" for label, w in zip(labels, cells))]
    lines += [f"{label:<{width}}  " + "  ".join(f"{n:>{w}}" for n, w in zip(row, cells))
              for label, row in zip(labels, matrix)]
    return "\n".join(lines)


def plot_confusion(path: Path, matrix: np.ndarray, labels: list[str], title: str, *, normalise: bool = False) -> None:
    """Write the (C, C) matrix as a PNG: counts, or with ``normalise`` the fraction of each true class.

    matplotlib's Agg backend: no window is ever opened.

    Raises
    ------
    ImportError : matplotlib (in the ``[train]`` extra) is not installed. OSError : ``path`` cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalise else matrix
    top = 1.0 if normalise else values.max()
    size = 2.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    try:
        ax.imshow(values, cmap="Blues", vmin=0, vmax=top)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
        for (row, col), value in np.ndenumerate(values):
            ax.text(col, row, f"{value:.2f}" if normalise else str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > top / 2 else "black")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
