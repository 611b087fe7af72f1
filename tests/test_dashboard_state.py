"""Dashboard state without a browser: what it keeps, drops and projects from schema v1 messages."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest
from mqtt_testing import Collector, wait_until
from stream_testing import TINY

from audeep_edge.bundle import load_bundle
from audeep_edge.config import ListenConfig
from audeep_edge.dashboard import DashboardServer
from audeep_edge.dashboard import server as server_module
from audeep_edge.dashboard.device_state import HistoryLimits
from audeep_edge.dashboard.mqtt_state import FleetState
from audeep_edge.dashboard.projection import PcaProjector, decode_embedding
from audeep_edge.head.adaptation import Adaptation
from audeep_edge.head.enroll import Enrollment
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.pipeline.assemble import assemble
from audeep_edge.sinks.mqtt import MqttSink
from audeep_edge.sources import AudioBlock


def window(seq: int, label: str | None = "Rain", wall_time: float | None = None, **extra) -> bytes:
    return json.dumps({"schema_version": 1, "device_id": "d", "seq": seq, "audio_time": float(seq),
                       "wall_time": 1.7e9 + seq if wall_time is None else wall_time, "label": label,
                       "confidence": None if label is None else 0.8, "smoothed_label": label,
                       "top_k": [] if label is None else [{"label": label, "p": 0.8}], "dbfs": -30.0,
                       **extra}).encode()


def device(state: FleetState, device_id: str = "d") -> dict:
    return next(d for d in state.snapshot()["devices"] if d["id"] == device_id)


def novel(state: str, duration: float, peak: float = 0.99) -> bytes:
    return json.dumps({"schema_version": 1, "device_id": "d", "wall_time": 1.7e9, "type": "novel", "seq": 3,
                       "state": state, "audio_time": 3.0, "start_time": 3.0 - duration, "duration": duration,
                       "peak": peak}).encode()


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


def test_hostile_messages_are_counted_and_never_stop_the_state():
    """Each of these raised in paho's network thread (RecursionError, OverflowError, TypeError) or bloated the
    state; now each is one bad message, and the next good window is used."""
    deep = b'{"schema_version": 1, "seq": 0, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = 10**400
    hostile = [
        ("window", deep),
        ("window", window(0, label="x" * 201)),
        ("window", window(0, label="x" * 1_000_000)),  # over the payload bound
        ("event", deep),
    ]
    state = FleetState()
    for kind, payload in hostile:
        assert not state.handle_message("d", kind, payload)
    assert not state.handle_message("no/such id", "window", window(0))  # no device can publish that id
    assert state.stats()["bad_messages"] == len(hostile) + 1 and state.stats()["devices"] == 0
    nested = {"schema_version": 1, "labels": ["Rain", "x" * 300], "embedding_size": huge, "deep": [[[[1]]]],
              "note": "y" * 300, "window_seconds": 5}
    assert state.handle_message("d", "info", json.dumps(nested).encode())
    assert state.handle_message("d", "window", window(1, embedding=[1.0, huge]))  # a bad embedding is left out
    assert state.handle_message("d", "window", window(2, confidence=huge, smoothed_label=None))  # as NaN: null
    assert state.handle_message("d", "window", window(3, top_k=5))  # a malformed top_k is left out
    d = device(state)
    assert d["info"] == {"schema_version": 1, "labels": ["Rain"], "enrolled_labels": [], "window_seconds": 5}
    assert [(w["seq"], w["conf"]) for w in d["windows"]] == [(1, 0.8), (2, None), (3, 0.8)]
    assert d["windows"][-1]["topk"] == []
    json.dumps(state.snapshot())  # what browsers get still serialises


def test_devices_are_bounded_and_the_one_silent_the_longest_goes_first():
    state = FleetState(HistoryLimits(max_devices=3))
    for i, name in enumerate(["a", "b", "c"]):
        state.handle_message(name, "window", window(0), rx=1000.0 + i)
    state.collect_update()
    state.handle_message("a", "status", b"online")  # a is heard from again: b is now silent the longest
    for name in ("d", "e"):
        state.handle_message(name, "window", window(0))
    assert [d["id"] for d in state.snapshot()["devices"]] == ["a", "d", "e"]
    update = state.collect_update()
    assert update["removed"] == ["b", "c"] and state.stats()["devices_dropped"] == 2
    assert "removed" not in state.collect_update()


def test_a_forged_seq_jump_is_not_counted_as_lost_windows():
    state = FleetState()
    state.handle_message("d", "info", b'{"schema_version": 1, "hop_seconds": 1.0}')
    for seq in (0, 1, 2):
        state.handle_message("d", "window", window(seq))
    state.handle_message("d", "window", window(999_999, audio_time=2.5))  # someone else's window
    state.handle_message("d", "window", window(3))  # the device goes on: lower seq, new wall_time
    state.handle_message("d", "window", window(6))  # a real gap: audio_time moved on 3 hops
    assert device(state)["lost"] == 2


def test_a_connection_that_never_finishes_its_request_is_closed(mosquitto, monkeypatch):
    monkeypatch.setattr(server_module._Handler, "timeout", 0.5)
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server, \
            socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        sock.settimeout(10)
        assert sock.recv(1024) == b""  # closed by the server, its thread free again


def test_a_flood_of_connections_gets_503s_and_the_dashboard_serves_again_after_it(mosquitto, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 4)
    monkeypatch.setattr(server_module, "MAX_PER_CLIENT", 3)
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]  # each holds a thread
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port)) as extra:  # this address's share is used up
            extra.settimeout(10)
            assert extra.recv(1024).startswith(b"HTTP/1.1 503")
        peer = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0))
        with peer:  # another address still gets in
            peer.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            peer.settimeout(10)
            assert b" 200 " in peer.recv(1024).split(b"\r\n")[0]
        time.sleep(0.3)  # its slot is free again
        idle.append(socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.3", 0)))
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.4", 0)) as extra:
            extra.settimeout(10)
            assert extra.recv(1024).startswith(b"HTTP/1.1 503")  # all 4 slots taken
        for sock in idle:
            sock.close()

        def serves() -> bool:
            try:
                return urllib.request.urlopen(f"{server.url}api/state", timeout=5).status == 200
            except OSError:  # urllib's HTTPError (503) included
                return False

        assert wait_until(serves, timeout=10)


def test_scene_shown_is_the_smoothed_label_with_its_own_probability():
    state = FleetState()
    state.handle_message("d", "window", json.dumps({
        "schema_version": 1, "seq": 0, "label": "Dog", "confidence": 0.5, "smoothed_label": "Rain",
        "top_k": [{"label": "Dog", "p": 0.5}, {"label": "Rain", "p": 0.4}]}).encode())
    shown = device(state)["windows"][0]
    assert (shown["label"], shown["conf"], shown["raw_label"]) == ("Rain", 0.4, "Dog")
    # a device that publishes the smoothed probability: that, not this window's (nearly 0) probability
    state.handle_message("d", "window", json.dumps({
        "schema_version": 1, "seq": 1, "label": "Dog", "confidence": 0.99, "smoothed_label": "Rooster",
        "smoothed_confidence": 0.62, "top_k": [{"label": "Dog", "p": 0.99}, {"label": "Rooster", "p": 0.004}]}).encode())
    shown = device(state)["windows"][1]
    assert (shown["label"], shown["conf"]) == ("Rooster", 0.62)


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


def test_novelty_scores_and_novel_events_are_kept_over_the_history_and_bounded():
    state = FleetState(HistoryLimits(history_s=60, max_novel=3))
    for seq, score in enumerate([0.1, 0.5, 0.97, 0.99]):
        state.handle_message("d", "window", window(seq, novelty=score), rx=1000.0 + seq)
    state.handle_message("d", "window", window(4), rx=1004.0)  # no baseline (yet): no score
    state.handle_message("d", "event", novel("start", 3.0), rx=1003.0)
    d = device(state)
    assert [w["novelty"] for w in d["windows"]] == [0.1, 0.5, 0.97, 0.99, None]
    assert d["novel"] == [{"state": "start", "t0": 1000.0, "t": 1003.0, "peak": 0.99}]  # from the first high score
    assert state.collect_update()["devices"][0]["novel"] == d["novel"]
    state.handle_message("d", "event", novel("maybe", 1.0), rx=1004.0)  # listed, but no edge of a novel event
    assert state.collect_update()["devices"][0]["novel"] == [] and len(device(state)["events"]) == 2

    for i in range(4):  # a count bound ...
        state.handle_message("d", "event", novel("end", 5.0), rx=1010.0 + i)
    assert [e["t"] for e in device(state)["novel"]] == [1011.0, 1012.0, 1013.0]
    state.handle_message("d", "event", novel("start", 0.0), rx=2000.0)  # ... and an age bound
    assert [e["t"] for e in device(state)["novel"]] == [2000.0]  # the newest stays: an event may be going on


def test_info_tells_enrolled_labels_apart_and_a_republished_info_replaces_it():
    state = FleetState()
    info = {"schema_version": 1, "labels": ["Rain", "Dog", "doorbell"], "enrolled_labels": ["doorbell"]}
    state.handle_message("d", "info", json.dumps(info).encode())
    state.handle_message("old", "info", b'{"schema_version": 1, "labels": ["Rain"]}')  # before enrolled_labels
    state.handle_message("odd", "info", b'{"schema_version": 1, "labels": "Rain", "enrolled_labels": [1, "x"]}')
    assert device(state)["info"]["enrolled_labels"] == ["doorbell"]
    assert device(state, "old")["info"]["enrolled_labels"] == []
    assert (device(state, "odd")["info"]["labels"], device(state, "odd")["info"]["enrolled_labels"]) == ([], ["x"])
    state.collect_update()
    state.handle_message("d", "info", json.dumps({**info, "labels": ["Rain", "Dog", "kettle"],
                                                  "enrolled_labels": ["kettle"]}).encode())
    assert state.collect_update()["devices"][0]["info"]["enrolled_labels"] == ["kettle"]


class EnrollingSource:
    """1 s blocks of noise at 16 kHz; before block ``i`` it runs ``changes[i]`` (what ``enroll`` does to files)."""

    name, sample_rate, channels, overruns, queue_depth = "scripted", 16000, 1, 0, 0

    def __init__(self, blocks: int, changes: dict) -> None:
        self.count, self.changes = blocks, changes

    def blocks(self, stop):
        rng = np.random.default_rng(0)
        for i in range(self.count):
            if i in self.changes:
                self.changes[i]()
            yield AudioBlock(rng.normal(0, 0.1, (16000, 1)).astype(np.float32), time.monotonic())


def test_labels_enrolled_while_listening_reach_a_dashboard_started_later(mosquitto, tmp_path):
    bundle = load_bundle(shutil.copytree(TINY, tmp_path / "tiny.bundle"))
    sha, size = bundle.manifest["sha256"], bundle.embedding_size
    adaptation = Adaptation(bundle.path, sha, size, interval=0.0)  # listen checks every 2 s; no need to wait here
    examples = np.random.default_rng(1).normal(size=(3, size)).astype(np.float32)

    def enroll(add: str, remove: str | None = None):
        def change():
            enrollment = Enrollment.load(bundle.path, sha, size)
            if remove:
                enrollment.remove(remove)
            enrollment.add(add, examples)
            enrollment.save()
        return change

    run = dataclasses.replace(assemble(ListenConfig(device_id="lab", broker=mosquitto.url), bundle),
                              adaptation=adaptation)
    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/lab/info"])
    sink = MqttSink(MqttSettings(url=mosquitto.url), "lab", run.info())
    try:
        assert sink.wait_connected(10)
        source = EnrollingSource(5, {1: enroll("beep"), 3: enroll("kettle", remove="beep")})
        summary = run.pipeline(source, [sink]).run()
        assert summary.windows > 5
    finally:
        sink.close()
    assert collector.wait_for(lambda c: len(c.on("audeep/lab/info")) == 3), collector.json("audeep/lab/info")
    collector.close()
    announced = collector.json("audeep/lab/info")
    assert [info["enrolled_labels"] for info in announced] == [[], ["beep"], ["kettle"]]
    assert announced[-1]["labels"] == [*bundle.labels, "kettle"] and announced[-1]["bundle"] == "tiny"

    # started after the run: sees the retained info
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server:
        def lab() -> dict | None:
            with urllib.request.urlopen(server.url + "api/state", timeout=5) as response:
                return next((d for d in json.load(response)["devices"] if d["id"] == "lab" and d["info"]), None)
        assert wait_until(lambda: lab() is not None)
        assert lab()["info"]["enrolled_labels"] == ["kettle"] and lab()["status"] == "offline"


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

    with DashboardServer(MqttSettings(url=mosquitto.url, topic_prefix="home/audeep"), port=0) as server:
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


def test_the_dashboard_and_its_recorder_trust_a_private_ca_like_listen(tls_broker, tmp_path):
    """The dashboard takes listen's TLS settings (one client factory): its live view and its recorder both reach an
    mqtts:// broker whose certificate a private CA signed; without that CA the page says why it cannot connect."""
    settings = MqttSettings(url=tls_broker.tls_url, ca_file=tls_broker.ca)
    with DashboardServer(settings, port=0, db=str(tmp_path / "h.sqlite")) as server:
        sink = MqttSink(settings, "vault", {"labels": ["Rain"]})
        assert sink.wait_connected(5)
        # windows are live messages, not retained: one sent before the dashboard's subscription took hold is not
        # for it to see, so the sink sends one each poll until the live view shows it
        assert wait_until(lambda: server.state.snapshot()["broker"]["connected"])

        def shown() -> bool:
            sink.publish_window(json.loads(window(0)))
            return any(d["id"] == "vault" and d["windows"] for d in server.state.snapshot()["devices"])
        assert wait_until(shown)

        def recorded() -> list[str]:
            with urllib.request.urlopen(server.url + "api/devices", timeout=5) as response:
                return [d["id"] for d in json.load(response)]
        assert wait_until(lambda: "vault" in recorded())
        sink.close()

    with DashboardServer(MqttSettings(url=tls_broker.tls_url), port=0) as untrusted:
        assert wait_until(lambda: "certificate verify failed" in (untrusted.state.snapshot()["broker"]["error"] or ""))
        assert not untrusted.state.snapshot()["broker"]["connected"]
