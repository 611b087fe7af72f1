"""Novelty baseline: percentile calibration, event detection with hysteresis, persistence (synthetic embeddings)."""

from __future__ import annotations

import numpy as np
import pytest

from audeep_edge.errors import ConfigError, DataError, ModelError
from audeep_edge.encoder.whitening import EmbeddingWhitening, PartialWhitening, WhiteningSettings, read_whitening
from audeep_edge.head.baseline import bundle_baseline, load_baseline
from audeep_edge.head.baseline_fit import METHODS, fit_baseline, fold_of_each
from audeep_edge.head.novelty import NoveltyConfig, NoveltyDetector

D = 48


def normal_sounds(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    """Embeddings of the "normal" sounds: a few Gaussian clusters."""
    return (centres[rng.integers(len(centres), size=n)] + rng.normal(size=(n, D))).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=2.0, size=(3, D))
    reference = normal_sounds(rng, 300, centres)
    fresh = normal_sounds(rng, 600, centres)
    strange = (rng.normal(scale=2.0, size=D) * 2 + rng.normal(size=(100, D))).astype(np.float32)
    return reference, fresh, strange


@pytest.mark.parametrize("method", METHODS)
def test_normal_windows_score_uniformly_and_strange_ones_near_one(world, method):
    reference, fresh, strange = world
    baseline = fit_baseline(reference, method=method, groups=np.arange(300) // 10)
    scores = baseline.score(fresh)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    # percentiles of held-out reference scores: ordinary windows land anywhere, about uniformly
    assert 0.35 < scores.mean() < 0.6
    assert 0.01 < np.mean(scores > 0.9) < 0.2
    assert np.histogram(scores, bins=4, range=(0, 1))[0].min() > 0.12 * scores.size
    assert np.median(baseline.score(strange)) == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_a_sound_new_only_along_a_minor_direction_is_still_novel(method):
    # normal sounds vary along 4 directions; the new one is ordinary there but leaves that subspace
    rng = np.random.default_rng(4)
    mixing = rng.normal(size=(4, D))
    reference = rng.normal(size=(300, 4)) @ mixing + 0.1 * rng.normal(size=(300, D))
    aside = np.linalg.svd(mixing)[2][-1]  # a unit direction orthogonal to the 4 used ones
    strange = rng.normal(size=(50, 4)) @ mixing + 0.1 * rng.normal(size=(50, D)) + 3.0 * aside
    baseline = fit_baseline(reference, method=method, dims=4, components=2)
    assert np.median(baseline.score(strange)) == 1.0


def test_a_score_is_the_fraction_of_held_out_reference_scores_below_it(world):
    reference, fresh, _ = world
    baseline = fit_baseline(reference, method="knn")
    raw = baseline.raw_scores(fresh[:20])
    expected = [(baseline.calibration <= r).mean() for r in raw]
    np.testing.assert_allclose(baseline.score(fresh[:20]), expected)


def test_folds_keep_groups_whole_and_cut_a_recording_into_contiguous_stretches():
    groups = np.repeat(["a.wav", "b.wav", "c.wav", "d.wav"], 5)
    folds = fold_of_each(20, groups, folds=3)
    for g in np.unique(groups):
        assert np.unique(folds[groups == g]).size == 1
    stretches = fold_of_each(20, None, folds=4)
    np.testing.assert_array_equal(stretches, np.repeat(np.arange(4), 5))


def recording(rng: np.random.Generator, n: int, mixing: np.ndarray) -> np.ndarray:
    """Windows of one recording of a sound that varies along a few latent directions: overlapping windows
    make consecutive embeddings near-duplicates (AR(1), rho = 0.98)."""
    latent = np.empty((n, mixing.shape[0]))
    latent[0] = rng.normal(size=mixing.shape[0])
    for i in range(1, n):
        latent[i] = 0.98 * latent[i - 1] + np.sqrt(1 - 0.98**2) * rng.normal(size=mixing.shape[0])
    return (latent @ mixing + 0.05 * rng.normal(size=(n, D))).astype(np.float32)


@pytest.mark.parametrize("method", ["lof", "knn"])
def test_contiguous_folds_keep_a_new_recording_of_the_same_sound_ordinary(method):
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(4, D))
    reference, later = recording(rng, 300, mixing), recording(rng, 100, mixing)
    contiguous = fit_baseline(reference, method=method)
    assert contiguous.score(later).mean() < 0.75
    # window-by-window folds let each window's neighbours in time vouch for it: everything new looks novel
    windowwise = fit_baseline(reference, method=method, groups=np.arange(300))
    assert windowwise.score(later).mean() > 0.9


@pytest.mark.parametrize("method", METHODS)
def test_save_and_load_give_the_same_scores(world, tmp_path, method):
    reference, fresh, _ = world
    baseline = fit_baseline(reference, method=method, meta={"model_sha256": "abc", "seconds": 300.0})
    path = baseline.save(tmp_path / "baseline.npz")
    loaded = load_baseline(path)
    assert loaded.method == method and loaded.meta["model_sha256"] == "abc" and loaded.meta["windows"] == 300
    np.testing.assert_array_equal(loaded.score(fresh), baseline.score(fresh))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.npz"]  # no temporary left behind


def test_a_whitened_bundle_s_baseline_scores_with_the_whitening_undone_and_keeps_its_examples(world, tmp_path):
    reference, fresh, strange = world
    white = PartialWhitening.fit(reference, WhiteningSettings(power=1.0, rank=8))
    EmbeddingWhitening({"all": (slice(0, D), white)}).save(tmp_path)  # the bundle directory's whitening.npz
    space = read_whitening(tmp_path)  # as `baseline fit` reads it
    plain = fit_baseline(reference, method="lof")
    baseline = fit_baseline(white.apply(reference), method="lof", space=space, meta={"model_sha256": "abc"})
    np.testing.assert_allclose(baseline.score(white.apply(fresh)), plain.score(fresh), atol=0.02)
    np.testing.assert_allclose(baseline.score(white.apply(strange)), plain.score(strange), atol=0.02)
    # the examples stay as the bundle gives them: enrolled classes compare the bundle's own embeddings
    np.testing.assert_allclose(baseline.examples[:3], white.apply(reference[:3]), atol=0.05)
    baseline.save(tmp_path / "baseline.npz")
    loaded = bundle_baseline(tmp_path, "abc")
    np.testing.assert_array_equal(loaded.score(white.apply(fresh)), baseline.score(white.apply(fresh)))
    (tmp_path / "whitening.npz").unlink()
    with pytest.raises(ModelError, match="no whitening.npz"):
        bundle_baseline(tmp_path, "abc")
    with pytest.raises(ModelError, match="up to dimension 48"):  # a file of another embedding size
        fit_baseline(white.apply(reference)[:, :40], method="lof", space=space)


def test_load_rejects_a_missing_or_corrupt_file(tmp_path):
    with pytest.raises(ModelError, match="baseline fit"):
        load_baseline(tmp_path / "baseline.npz")
    (tmp_path / "baseline.npz").write_bytes(b"not an npz")
    with pytest.raises(ModelError, match="baseline.npz"):
        load_baseline(tmp_path / "baseline.npz")


def test_scores_need_embeddings_of_the_fitted_size(world):
    baseline = fit_baseline(world[0], method="knn")
    with pytest.raises(ModelError, match="48"):
        baseline.score(np.zeros((1, D + 1), np.float32))


def test_fit_rejects_too_little_audio_and_bad_values():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="at least 10"):
        fit_baseline(rng.normal(size=(5, D)))
    bad = rng.normal(size=(50, D))
    bad[3, 4] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_baseline(bad)
    with pytest.raises(ConfigError, match="--method"):
        fit_baseline(rng.normal(size=(50, D)), method="svm")


def feed(detector: NoveltyDetector, scores: list[float], hop: float = 1.0) -> list[tuple[int, str]]:
    """(window index, state) of every event the scores cause."""
    events = []
    for i, score in enumerate(scores):
        event = detector.update(i * hop, score)
        if event is not None:
            events.append((i, event.state))
    return events


def test_an_event_starts_only_after_the_minimum_duration_above_threshold():
    detector = NoveltyDetector(NoveltyConfig(threshold=0.9, release=0.5, min_duration=2.0))
    # two high windows (1 s) are a blip; three (2 s) are an event
    assert feed(detector, [0.1, 0.95, 0.99, 0.2, 0.95, 0.97, 0.99, 0.96]) == [(6, "start")]
    assert detector.active


def test_hysteresis_holds_the_event_until_the_score_falls_below_release():
    detector = NoveltyDetector(NoveltyConfig(threshold=0.9, release=0.5, min_duration=0.0))
    events = feed(detector, [0.95, 0.7, 0.6, 0.51, 0.4, 0.7, 0.92])
    assert events == [(0, "start"), (4, "end"), (6, "start")]


def test_the_end_event_reports_start_duration_and_peak():
    detector = NoveltyDetector(NoveltyConfig(threshold=0.9, release=0.5, min_duration=1.0))
    out = [detector.update(t * 0.5, s) for t, s in enumerate([0.2, 0.91, 0.97, 0.93, 0.8, 0.3])]
    start, end = out[3], out[5]
    assert (start.state, start.start_time, start.duration) == ("start", 0.5, 1.0)
    assert (end.state, end.start_time, end.duration, end.peak) == ("end", 0.5, 2.0, 0.97)
    assert end.payload() == {"state": "end", "audio_time": 2.5, "start_time": 0.5, "duration": 2.0, "peak": 0.97}


def test_nan_scores_count_as_low_and_reset_forgets_a_run():
    detector = NoveltyDetector(NoveltyConfig(threshold=0.9, release=0.5, min_duration=1.0))
    assert feed(detector, [0.95, float("nan"), 0.95]) == []
    detector.reset()
    assert detector.update(10.0, 0.95) is None and detector.update(11.0, 0.95).state == "start"


@pytest.mark.parametrize("kwargs, flag", [({"threshold": 0.0}, "--novelty-threshold"),
                                          ({"threshold": 0.8, "release": 0.9}, "--novelty-release"),
                                          ({"min_duration": -1.0}, "--novelty-min-duration")])
def test_config_names_the_bad_option(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        NoveltyConfig(**kwargs)
