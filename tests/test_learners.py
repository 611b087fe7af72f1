"""Learners and evaluation core: MLP/SVM on synthetic representations, scores, votes, upsampling, heads."""

from __future__ import annotations

import numpy as np
import pytest

from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.training.evaluation import (Split, balanced_indices, confusion_matrix, cross_validation_splits,
                                             evaluate, partition_split, unweighted_average_recall, vote_per_file)
from audeep_edge.training.heads import load_head, save_head
from audeep_edge.training.learners import MLP, LinearSVM, MLPOptions

FAST = MLPOptions(num_units=16, num_epochs=60, learning_rate=0.01)


def blobs(n_per_class=10, classes=3, dim=16, offset=50.0, spread=10.0, seed=0):
    """Separable classes far from the origin with a large scale, so standardisation matters.

    Returns features (N, D) float32, labels (N,), filenames (N,), cv_folds (N, 5) (round robin per class).
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 3
    labels = np.repeat(np.arange(classes), n_per_class)
    features = offset + spread * (centers[labels] + 0.3 * rng.normal(size=(labels.size, dim)))
    filenames = np.array([f"f{i:03d}.wav" for i in range(labels.size)], dtype=object)
    valid_fold = np.tile(np.arange(n_per_class) % 5, classes)
    cv_folds = (np.arange(5)[None, :] == valid_fold[:, None]).astype(np.int64)  # 1 = VALID in that fold
    return features.astype(np.float32), labels, filenames, cv_folds


class Recorder:
    """A learner that remembers what it was trained on and predicts fixed labels."""

    def __init__(self, predictions=None):
        self.fits = []
        self.predictions = predictions

    def fit(self, features, labels, num_classes, seed=None):
        self.fits.append((np.array(features), np.array(labels)))
        return self

    def predict(self, features):
        return np.zeros(len(features), np.int64) if self.predictions is None else self.predictions


@pytest.fixture(scope="module")
def fitted_mlp():
    features, labels, _, _ = blobs()
    return MLP(FAST).fit(features, labels, 3, seed=7), features, labels


def test_mlp_cross_validation_on_separable_data_is_accurate():
    features, labels, filenames, cv = blobs()
    result = evaluate(MLP(FAST), features, labels, filenames, cross_validation_splits(cv), 3, seed=1)
    assert [s.split for s in result.scores] == [f"fold {k}" for k in range(1, 6)]
    assert result.accuracy >= 0.95 and result.uar >= 0.95
    assert result.confusion.sum() == len(labels)  # every instance is VALID in exactly one fold


def test_svm_partition_evaluation_on_separable_data_is_accurate():
    features, labels, filenames, _ = blobs()
    partitions = np.where(np.arange(labels.size) % 3 == 0, 2, 0)  # every third instance is TEST
    split = partition_split(partitions, [0], [2])
    assert split.name == "train -> test"
    result = evaluate(LinearSVM(1.0), features, labels, filenames, [split], 3, repeat=2, seed=1)
    assert len(result.scores) == 2 and result.accuracy == 1.0 and result.accuracy_std == 0.0


def test_uar_and_confusion_against_a_hand_example():
    truth = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    assert unweighted_average_recall(truth, predicted) == pytest.approx((6 / 6 + 1 / 2) / 2)
    assert confusion_matrix(truth, predicted, 3).tolist() == [[6, 0, 0], [1, 1, 0], [0, 0, 0]]
    # a class that is only predicted does not count as a recall of 0 (sklearn's macro recall gives 0.5 here)
    assert unweighted_average_recall(np.array([0, 0, 1, 1]), np.array([2, 0, 1, 1])) == pytest.approx(0.75)


def test_majority_vote_per_file_with_ties_to_the_lowest_class():
    files, labels = vote_per_file(np.array(["b", "a", "b", "a", "b", "a", "a"]),
                                  np.array([2, 1, 2, 0, 1, 0, 1]), 3)
    assert files.tolist() == ["a", "b"] and labels.tolist() == [0, 2]  # "a": 0 and 1 tie twice each


def test_evaluation_scores_files_with_majority_vote_and_chunks_without():
    filenames = np.repeat(["x", "y", "z", "w"], 3)  # 4 files x 3 chunks
    labels = np.repeat([0, 1, 0, 1], 3)
    features = np.zeros((12, 2), np.float32)
    train, valid = np.arange(12) >= 6, np.arange(12) < 6  # evaluate files x (class 0) and y (class 1)
    chunk_votes = np.array([0, 1, 0, 1, 1, 0])  # x: 2 of 3 chunks right, y: 2 of 3 right
    per_file = evaluate(Recorder(chunk_votes), features, labels, filenames, [Split("s", train, valid)], 2,
                        majority_vote=True)
    per_chunk = evaluate(Recorder(chunk_votes), features, labels, filenames, [Split("s", train, valid)], 2)
    assert per_file.accuracy == 1.0 and per_file.confusion.sum() == 2
    assert per_chunk.accuracy == pytest.approx(4 / 6) and per_chunk.confusion.sum() == 6


def test_standardisation_is_fitted_on_training_data_only(fitted_mlp):
    features, labels, filenames, cv = blobs()
    recorder = Recorder()
    evaluate(recorder, features, labels, filenames, cross_validation_splits(cv), 3)
    for k, (seen, _) in enumerate(recorder.fits):  # the learner never sees a VALID instance
        np.testing.assert_array_equal(seen, features[cv[:, k] == 0])
    mlp, train, _ = fitted_mlp
    mean = mlp.head.get_layer("standardise").mean.numpy().ravel()
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=1e-5)
    # test data does not move the scaler: predictions of one instance do not depend on its batch mates
    shifted = np.concatenate([train[:1], train[1:] + 1000.0])
    np.testing.assert_array_equal(mlp.predict_proba(shifted)[0], mlp.predict_proba(train[:1])[0])
    svm = LinearSVM(1.0).fit(train[:20], labels[:20], 3)
    np.testing.assert_allclose(svm.pipeline[0].mean_, train[:20].mean(axis=0), rtol=1e-5)


def test_upsampling_balances_the_training_classes_exactly():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 2)
    index = balanced_indices(labels, np.random.default_rng(0))
    assert np.bincount(labels[index]).tolist() == [7, 7, 7]
    assert set(index) == set(range(12))  # every instance is kept
    recorder = Recorder()
    features = np.arange(12, dtype=np.float32)[:, None]
    split = Split("s", np.arange(12) != 0, np.arange(12) == 0)
    evaluate(recorder, features, labels, np.arange(12).astype(str), [split], 3, upsample=True)
    assert np.bincount(recorder.fits[0][1]).tolist() == [6, 6, 6]  # the VALID instance is not upsampled


def test_refit_starts_fresh_and_is_reproducible(fitted_mlp):
    mlp, features, labels = fitted_mlp
    reused = MLP(FAST).fit(features[:20] * 2, labels[:20], 3, seed=1).fit(features, labels, 3, seed=7)
    np.testing.assert_allclose(reused.predict_proba(features), mlp.predict_proba(features), atol=1e-6)


def test_head_round_trip_keeps_the_scaler_and_the_probabilities(fitted_mlp, tmp_path):
    mlp, features, labels = fitted_mlp
    save_head(tmp_path / "head", mlp.head, ["a", "b", "c"], {"dataset": "blobs"})
    head, names = load_head(tmp_path / "head")
    assert names == ["a", "b", "c"]
    test, test_labels, _, _ = blobs(n_per_class=5, seed=0)  # raw, unstandardised inputs (mean ~50)
    probabilities = np.asarray(head(test))
    np.testing.assert_array_equal(probabilities, mlp.predict_proba(test))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == test_labels) >= 0.9


def test_load_head_names_what_is_wrong(fitted_mlp, tmp_path):
    mlp, _, _ = fitted_mlp
    with pytest.raises(ModelError, match="no such head directory"):
        load_head(tmp_path / "missing")
    with pytest.raises(ModelError, match="3 outputs but 2 labels"):
        save_head(tmp_path / "h", mlp.head, ["a", "b"], {})
    save_head(tmp_path / "h", mlp.head, ["a", "b", "c"], {})
    (tmp_path / "h" / "labels.json").write_text('["a", "b"]')
    with pytest.raises(ModelError, match="3 outputs but labels.json lists 2"):
        load_head(tmp_path / "h")
    (tmp_path / "h" / "head.keras").write_bytes(b"not a keras file")
    with pytest.raises(ModelError, match="cannot load the head model"):
        load_head(tmp_path / "h")


def test_invalid_learner_options_are_config_errors():
    with pytest.raises(ConfigError, match="--keep-prob"):
        MLPOptions(keep_prob=0.0)
    with pytest.raises(ConfigError, match="--complexity"):
        LinearSVM(0.0)
