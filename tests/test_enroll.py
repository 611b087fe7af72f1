"""Enrolled classes: nearest-centroid head, combination with a trained head, persistence, reloading."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from audeep_edge.errors import ConfigError, DataError, ModelError
from audeep_edge.head.enroll import (ACCEPT_SIMILARITY, ENROLLED_FILE, ENROLLED_INDEX, Enrollment, calibrated_accept,
                                     check_name)
from audeep_edge.head.reload import Reloading

D = 32


@pytest.fixture(scope="module")
def sounds():
    """Sampler of sounds 0..4 (clusters around random directions); 3 and 4 are this device's everyday sound."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(5, D)) * 2.0

    def draw(c: int, n: int) -> np.ndarray:
        return (centres[c] + 0.7 * rng.normal(size=(n, D))).astype(np.float32)

    return draw


def test_one_example_is_enough_and_is_used_at_once(tmp_path, sounds):
    draw = sounds
    enrollment = Enrollment(tmp_path, "sha", D)
    enrollment.add("doorbell", draw(0, 1))
    enrollment.add("kettle", draw(1, 1))
    head = enrollment.head()
    assert head.names == ("doorbell", "kettle")
    predicted = np.argmax(head.similarities(np.concatenate([draw(0, 20), draw(1, 20)])), axis=1)
    assert np.mean(predicted == np.repeat([0, 1], 20)) >= 0.95


def test_acceptance_is_calibrated_on_the_device_s_ordinary_sound(sounds):
    draw = sounds
    enrollment = Enrollment("unused", "sha", D)
    enrollment.add("doorbell", draw(0, 5))
    everyday = np.concatenate([draw(3, 200), draw(4, 200)])
    head = enrollment.head(negatives=everyday)
    membership = head.membership(head.similarities(np.concatenate([everyday, draw(3, 100)])))
    assert 0.02 < np.mean(membership >= 0.5) < 0.08  # FALSE_ACCEPT = 5 % of ordinary windows
    assert np.mean(head.membership(head.similarities(draw(0, 50))) >= 0.5) > 0.9
    assert enrollment.head().accept.tolist() == [ACCEPT_SIMILARITY]  # no baseline: the fixed default


def test_without_a_baseline_a_class_accepts_from_the_threshold_measured_for_the_bundle_s_encoder(sounds):
    draw = sounds
    labelled = np.concatenate([draw(c, 40) for c in range(5)])
    labels = np.repeat(np.arange(5), 40)
    accept = calibrated_accept(labelled, labels)
    enrollment = Enrollment("unused", "sha", D, accept_similarity=accept)
    enrollment.add("doorbell", draw(0, 5))
    head = enrollment.head()
    assert head.accept.tolist() == [accept]
    others = np.concatenate([draw(c, 100) for c in range(1, 5)])
    assert np.mean(head.membership(head.similarities(others)) >= 0.5) < 0.1  # about FALSE_ACCEPT of other sounds
    assert np.mean(head.membership(head.similarities(draw(0, 50))) >= 0.5) > 0.9


def test_combined_probabilities_give_enrolled_sounds_their_label_and_leave_the_rest_to_the_trained_head(sounds):
    draw = sounds
    enrollment = Enrollment("unused", "sha", D)
    enrollment.add("doorbell", draw(0, 5))
    head = enrollment.head(negatives=draw(3, 1000))
    trained = np.tile([0.7, 0.2, 0.1], (10, 1))  # the bundle's head: "Dog bark" for everything
    doorbell = head.combine(draw(0, 10), trained)
    everyday = head.combine(draw(3, 400), np.tile([0.7, 0.2, 0.1], (400, 1)))
    np.testing.assert_allclose(doorbell.sum(axis=1), 1.0)
    assert np.all(np.argmax(doorbell, axis=1) == 3)  # labels: 3 trained, then the enrolled one
    assert np.mean(np.argmax(everyday, axis=1) == 0) >= 0.85 and np.median(everyday[:, 3]) < 0.05
    # without a trained head the enrolled share is all there is: low for other sounds
    alone = head.combine(draw(3, 40))
    assert alone.shape == (40, 1) and np.median(alone) < 0.05


def test_remove_forgets_a_class_and_unknown_names_are_one_clear_error(tmp_path, sounds):
    draw = sounds
    enrollment = Enrollment(tmp_path, "sha", D)
    enrollment.add("doorbell", draw(0, 3))
    enrollment.add("kettle", draw(1, 3))
    enrollment.remove("doorbell")
    assert enrollment.names == ["kettle"] and enrollment.head().names == ("kettle",)
    with pytest.raises(ConfigError, match="--remove 'cat'.*enrolled: kettle"):
        enrollment.remove("cat")
    enrollment.remove("kettle")
    assert enrollment.head() is None


def test_enrolling_again_replaces_unless_appending(sounds):
    draw = sounds
    enrollment = Enrollment("unused", "sha", D)
    enrollment.add("kettle", draw(1, 3))
    enrollment.add("kettle", draw(1, 4))
    assert enrollment.info("kettle")["windows"] == 4
    enrollment.add("kettle", draw(1, 2), append=True)
    assert enrollment.info("kettle")["windows"] == 6


def test_enrolled_classes_persist_next_to_the_bundle(tmp_path, sounds):
    draw = sounds
    enrollment = Enrollment(tmp_path, "sha", D)
    enrollment.add("doorbell", draw(0, 3), source="mic 30 s")
    enrollment.add("kettle", draw(1, 2), source="kettle.wav")
    enrollment.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ENROLLED_FILE, ENROLLED_INDEX])
    index = json.loads((tmp_path / ENROLLED_INDEX).read_text())
    assert [(c["name"], c["windows"], c["source"]) for c in index["classes"]] == [
        ("doorbell", 3, "mic 30 s"), ("kettle", 2, "kettle.wav")]
    loaded = Enrollment.load(tmp_path, "sha", D)
    assert loaded.names == ["doorbell", "kettle"]
    x = draw(2, 5)
    np.testing.assert_allclose(loaded.head().similarities(x), enrollment.head().similarities(x), rtol=1e-6)


def test_loading_refuses_examples_from_another_model(tmp_path, sounds):
    draw = sounds
    enrollment = Enrollment(tmp_path, "sha-old", D)
    enrollment.add("doorbell", draw(0, 3))
    enrollment.save()
    with pytest.raises(ModelError, match="another model"):
        Enrollment.load(tmp_path, "sha-new", D)
    (tmp_path / ENROLLED_FILE).write_bytes(b"garbage")
    with pytest.raises(ModelError, match="enroll again"):
        Enrollment.load(tmp_path, "sha-old", D)
    assert Enrollment.load(tmp_path / "elsewhere", "sha", D).names == []


def test_bad_examples_and_names_are_rejected():
    enrollment = Enrollment("unused", "sha", D)
    with pytest.raises(DataError, match="no embeddings"):
        enrollment.add("kettle", np.zeros((0, D)))
    with pytest.raises(ModelError, match="dimensions"):
        enrollment.add("kettle", np.zeros((2, D + 1)))
    with pytest.raises(ConfigError, match="trained labels"):
        check_name("Dog bark", ["Dog bark", "Rain"])
    with pytest.raises(ConfigError, match="trained labels \\('Rain'"):   # labels match whatever their case
        check_name("rain", ["Dog bark", "Rain"])
    assert check_name(" KETTLE ", ["Rain"], ["kettle"]) == "kettle"
    with pytest.raises(ConfigError, match="empty"):
        check_name("  ", [])
    assert check_name("  door   bell ", []) == "door bell"


def test_a_running_listen_picks_up_a_new_enrollment(tmp_path, sounds):
    draw = sounds
    reloading = Reloading(tmp_path / ENROLLED_FILE, lambda: Enrollment.load(tmp_path, "sha", D).head(),
                          interval=0.0)
    assert reloading.value is None and not reloading.poll()
    enrollment = Enrollment(tmp_path, "sha", D)
    enrollment.add("kettle", draw(1, 2))
    enrollment.save()
    assert reloading.poll() and reloading.value.names == ("kettle",)
    # a file that breaks while running keeps the previous classes
    (tmp_path / ENROLLED_FILE).write_bytes(b"garbage")
    os.utime(tmp_path / ENROLLED_FILE, ns=(1, 1))
    assert not reloading.poll() and reloading.value.names == ("kettle",)
