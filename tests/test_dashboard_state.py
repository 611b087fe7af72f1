"""Dashboard state without a browser: what it keeps, drops and projects from schema v1 messages."""

from __future__ import annotations

import base64
import json
import time
import urllib.request

import numpy as np
import pytest

from audeep_edge.dashboard import DashboardServer
from audeep_edge.dashboard.mqtt_state import FleetState, HistoryLimits
from audeep_edge.dashboard.projection import PcaProjector, decode_embedding


def window(seq: int, label: str | None = "Rain", wall_time: float | None = None, **extra) -> bytes:
    return json.dumps({"schema_version": 1, "device_id": "d", "seq": seq, "audio_time": float(seq),
                       "wall_time": 1.7e9 + seq if wall_time is None else wall_time, "label": label,
                       "confidence": None if label is None else 0.8, "smoothed_label": label,
                       "top_k": [] if label is None else [{"label": label, "p": 0.8}], "dbfs": -30.0,
                       **extra}).encode()


def device(state: FleetState, device_id: str = "d") -> dict:
    return next(d for d in state.snapshot()["devices"] if d["id"] == device_id)


def test_gaps_count_as_lost_repeats_are_dropped_and_a_restart_is_neither():
    state = FleetState()
    for seq in (0, 1, 4, 4, 5):  # 2 and 3 lost; 4 arrives twice (a resend after a reconnect)
        state.handle_message("d", "window", window(seq))
    state.handle_message("d", "window", window(0, wall_time=2e9))  # the device restarted
    d = device(state)
    assert [w["seq"] for w in d["windows"]] == [0, 1, 4, 5, 0]
    assert (d["lost"], d["repeats"]) == (2, 1)


def test_malformed_messages_are_counted_and_ignored():
    state = FleetState()
    bad = [("window", b"not json"), ("window", b"[1, 2]"), ("window", window(0, label=3)),
           ("window", json.dumps({"schema_version": 2, "label": "Rain", "confidence": 1}).encode()),
           ("status", b"maybe"), ("event", b'{"schema_version": 1}')]
    for kind, payload in bad:
        assert not state.handle_message("d", kind, payload)
    assert state.stats()["bad_messages"] == len(bad)
    assert state.handle_message("d", "window", window(1, label=None))  # an encoder without a classifier
    assert device(state)["windows"][0]["label"] is None


def test_scene_shown_is_the_smoothed_label_with_its_own_probability():
    state = FleetState()
    state.handle_message("d", "window", json.dumps({
        "schema_version": 1, "seq": 0, "label": "Dog", "confidence": 0.5, "smoothed_label": "Rain",
        "top_k": [{"label": "Dog", "p": 0.5}, {"label": "Rain", "p": 0.4}]}).encode())
    shown = device(state)["windows"][0]
    assert (shown["label"], shown["conf"], shown["raw_label"]) == ("Rain", 0.4, "Dog")


def test_deltas_carry_each_window_once_and_history_is_bounded():
    state = FleetState(HistoryLimits(max_windows=5))
    for seq in range(8):
        state.handle_message("d", "window", window(seq))
    first = state.collect_update()
    state.handle_message("d", "window", window(8))
    second = state.collect_update()
    assert [w["seq"] for w in first["devices"][0]["windows"]] == [3, 4, 5, 6, 7]
    assert [w["seq"] for w in second["devices"][0]["windows"]] == [8]
    assert state.collect_update()["devices"] == []
    assert len(device(state)["windows"]) == 5


def test_status_info_health_and_events_reach_the_snapshot():
    state = FleetState()
    state.handle_message("d", "status", b"online")
    state.handle_message("d", "info", b'{"schema_version": 1, "labels": ["Rain"], "embedding_size": 4}')
    state.handle_message("d", "health", b'{"schema_version": 1, "rtf": 0.1}')
    state.handle_message("d", "event", b'{"schema_version": 1, "type": "novel", "novelty": 0.9}')
    state.handle_message("d", "status", b"offline")
    d = device(state)
    assert d["status"] == "offline" and d["info"]["labels"] == ["Rain"] and d["health"]["rtf"] == 0.1
    assert [e["type"] for e in d["events"]] == ["novel"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_embeddings_decode_from_base64_and_json_lists_alike(dtype):
    vector = np.array([0.5, -1.25, 2.0, 0.0], dtype=dtype)
    b64 = {"embedding_b64": base64.b64encode(vector.astype(vector.dtype.newbyteorder("<")).tobytes()).decode(),
           "embedding_dtype": dtype}
    np.testing.assert_array_equal(decode_embedding(b64), vector.astype(np.float32))
    np.testing.assert_array_equal(decode_embedding({"embedding": vector.tolist()}), vector.astype(np.float32))
    assert decode_embedding({"embedding_b64": "%%%", "embedding_dtype": dtype}) is None
    assert decode_embedding({"embedding_b64": b64["embedding_b64"], "embedding_dtype": "complex64"}) is None
    assert decode_embedding({"embedding": [1.0, float("nan")]}) is None


def test_projection_finds_the_principal_plane_and_keeps_its_orientation():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64)) * 5
    data = np.concatenate([c + rng.normal(size=(40, 64)) * 0.3 for c in centres]).astype(np.float32)
    projector = PcaProjector()
    points = projector.project(data)
    assert points.shape == (120, 2) and np.abs(points).max() == pytest.approx(1.0)
    _, _, vt = np.linalg.svd(data - data.mean(axis=0), full_matrices=False)
    reference = vt[:2].T @ vt[:2]
    fitted = projector._axes @ projector._axes.T
    assert np.linalg.norm(fitted - reference, 2) < 0.05  # same plane as an exact PCA
    # the three clusters stay apart in the plane
    means = points.reshape(3, 40, 2).mean(axis=1)
    spread = points.reshape(3, 40, 2).std(axis=1).max()
    assert min(np.linalg.norm(means[i] - means[j]) for i, j in ((0, 1), (0, 2), (1, 2))) > 10 * spread
    # a refit on (almost) the same data neither mirrors nor rotates the map
    again = projector.project(data[1:])
    np.testing.assert_allclose(again, points[1:], atol=0.05)


def test_server_folds_a_real_fleet_with_a_multi_level_prefix(mosquitto):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with DashboardServer(mosquitto.url, port=0, prefix="home/audeep") as server:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        vector = np.arange(8, dtype="<f2")  # scaled by 1..2 per publish: float16 must not overflow
        deadline = time.monotonic() + 20
        snapshot = {"devices": []}
        while not snapshot["devices"] or not snapshot["devices"][0]["map"]["points"]:
            assert time.monotonic() < deadline, snapshot
            client.publish("home/audeep/attic/window", window(
                int(time.monotonic() * 10), embedding_b64=base64.b64encode((vector * (1 + time.monotonic() % 1)).tobytes()).decode(),
                embedding_dtype="float16"), qos=1).wait_for_publish(5)
            time.sleep(0.3)
            with urllib.request.urlopen(server.url + "api/state", timeout=5) as response:
                snapshot = json.load(response)
        client.disconnect()
        client.loop_stop()
    assert snapshot["devices"][0]["id"] == "attic"
    assert snapshot["broker"]["connected"] is True
    assert snapshot["devices"][0]["map"]["points"][0][2] == "Rain"
