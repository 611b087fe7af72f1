"""What the device learnt on its own, applied to each window: enrolled labels and the novelty score.

``listen`` holds one :class:`Adaptation` per bundle. Per window it calls :meth:`Adaptation.classify` (trained
+ enrolled probabilities), :meth:`Adaptation.novelty` and :meth:`Adaptation.event`; every few seconds
:meth:`Adaptation.poll` picks up a new ``enrolled.npz`` or ``baseline.npz`` written by ``audeep-edge enroll`` or
``baseline fit`` while it runs (True = the label list changed: reset smoothing, republish ``info``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audeep_edge.head.baseline import BASELINE_FILE, Baseline, bundle_baseline
from audeep_edge.head.enroll import ENROLLED_FILE, EnrolledHead, Enrollment
from audeep_edge.head.novelty import NoveltyConfig, NoveltyDetector, NoveltyEvent
from audeep_edge.head.reload import Reloading


class Adaptation:
    """Enrolled classes and novelty scoring for one bundle, reloaded when their files change.

    Parameters
    ----------
    bundle_dir : the bundle directory (where ``baseline.npz`` and ``enrolled.npz`` live).
    model_sha256 : the bundle model's hash (files made with another model are refused).
    embedding_size : D.
    accept_similarity : the bundle's no-baseline enrolment threshold (``Bundle.accept_similarity``).
    events : when scores become ``novel`` events.
    interval : seconds between checks of the files.

    Raises
    ------
    ModelError : a baseline or enrollment file that is unreadable or belongs to another model (at start-up).
    """

    def __init__(self, bundle_dir: str | Path, model_sha256: str, embedding_size: int, *,
                 accept_similarity: float | None = None, events: NoveltyConfig | None = None,
                 interval: float = 2.0) -> None:
        bundle_dir = Path(bundle_dir)
        self._baseline = Reloading(bundle_dir / BASELINE_FILE, lambda: bundle_baseline(bundle_dir, model_sha256),
                                   interval=interval)
        self._enrolled = Reloading(
            bundle_dir / ENROLLED_FILE,
            lambda: Enrollment.load(bundle_dir, model_sha256, embedding_size, accept_similarity).head(
                negatives=self._negatives()),
            interval=interval)
        self.detector = NoveltyDetector(events)

    def _negatives(self) -> np.ndarray | None:
        baseline: Baseline | None = self._baseline.value
        return baseline.examples if baseline is not None else None

    @property
    def enrolled(self) -> EnrolledHead | None:
        return self._enrolled.value

    @property
    def has_baseline(self) -> bool:
        return self._baseline.value is not None

    def poll(self) -> bool:
        """Reload changed files; True when the enrolled labels changed."""
        before = self.enrolled.names if self.enrolled else ()
        if self._baseline.poll():
            self._enrolled.poll(force=True)  # the acceptance thresholds are set on the baseline's windows
        else:
            self._enrolled.poll()
        return (self.enrolled.names if self.enrolled else ()) != before

    def labels(self, trained: list[str]) -> list[str]:
        """The trained labels followed by the enrolled ones: the order of :meth:`classify`'s probabilities."""
        return [*trained, *(self.enrolled.names if self.enrolled else ())]

    def classify(self, embedding: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray | None:
        """One window's probabilities over :meth:`labels` [shape=(B + C,)] (``probabilities`` unchanged when
        nothing is enrolled). Without a trained head they sum to the enrolled share (<= 1)."""
        if self.enrolled is None:
            return probabilities
        return self.enrolled.combine(embedding, probabilities)[0]

    def novelty(self, embedding: np.ndarray) -> float | None:
        """Novelty in [0, 1] of one embedding [shape=(D,)], or None without a baseline."""
        baseline: Baseline | None = self._baseline.value
        return float(baseline.score(embedding)[0]) if baseline is not None else None

    def event(self, audio_time: float, novelty: float | None) -> NoveltyEvent | None:
        """The ``novel`` event (start or end) this window's score causes, if any."""
        return None if novelty is None else self.detector.update(audio_time, novelty)
