"""MqttSink against a real mosquitto: order, schema, broker restarts, overflow, spool, last will, auth, TLS and
MQTT 5 (Home Assistant discovery: tests/test_homeassistant.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Mosquitto, free_port
from mqtt_testing import Collector, wait_until

from audeep_edge.errors import BrokerError
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sinks.mqtt import MqttSink

INFO = {"bundle": "esc10-t-rae-int8", "precision": "int8", "labels": ["Dog bark", "Rain"],
        "embedding_size": 1024, "window_seconds": 5.0, "hop_seconds": 1.0}


def window(seq: int, device: str = "kitchen") -> dict:
    """A window payload as schema v1 documents it."""
    return {"schema_version": 1, "device_id": device, "seq": seq, "audio_time": float(seq),
            "wall_time": 1764160000.0 + seq, "label": "Rain", "confidence": 0.91,
            "top_k": [{"label": "Rain", "p": 0.91}, {"label": "Dog bark", "p": 0.09}],
            "smoothed_label": "Rain", "dbfs": -23.4}


def seqs(collector: Collector, device: str) -> list[int]:
    return [payload["seq"] for payload in collector.json(f"audeep/{device}/window")]


def first_occurrences(values: list[int]) -> list[int]:
    seen: set[int] = set()
    return [v for v in values if not (v in seen or seen.add(v))]


def persistent_broker(tmp_path: Path) -> Mosquitto:
    """A mosquitto that keeps sessions (and QoS 0 messages for them) across a restart."""
    conf = f"persistence true\npersistence_location {tmp_path}/\nqueue_qos0_messages true\nuser root\n"
    broker = Mosquitto(tmp_path, extra_conf=conf)
    broker.start()
    return broker


@pytest.mark.parametrize(("protocol", "qos"), [("3.1.1", 0), ("3.1.1", 1), ("5", 1)])
def test_every_message_arrives_in_order_as_published(mosquitto, protocol, qos):
    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/#"])
    sink = MqttSink(MqttSettings(url=mosquitto.url, protocol=protocol, qos=qos), "kitchen", INFO)
    assert sink.wait_connected(5)
    sent = [window(seq) for seq in range(300)]
    for payload in sent:
        sink.publish_window(payload)
    sink.publish_health({"schema_version": 1, "device_id": "kitchen", **sink.stats()})
    sink.publish_event({"schema_version": 1, "device_id": "kitchen", "wall_time": 1.0, "type": "novel"})
    sink.close()
    assert sink.stats() == {"buffered": 0, "dropped": 0, "connected": False}

    assert collector.wait_for(lambda c: [p for p, _ in c.on("audeep/kitchen/status")] == [b"online", b"offline"])
    assert collector.json("audeep/kitchen/window") == sent
    assert collector.json("audeep/kitchen/health")[0]["dropped"] == 0
    assert collector.json("audeep/kitchen/event")[0]["type"] == "novel"
    info = collector.json("audeep/kitchen/info")[0]
    assert info == {"schema_version": 1, "device_id": "kitchen", **INFO}
    late = Collector(mosquitto.host, mosquitto.port, ["audeep/kitchen/status", "audeep/kitchen/info"])
    assert late.wait_for(lambda c: len(c.messages) == 2)
    assert late.on("audeep/kitchen/status") == [(b"offline", True)]
    assert late.on("audeep/kitchen/info")[0][1] is True
    collector.close()
    late.close()


@pytest.mark.parametrize("qos", [0, 1])
def test_broker_restart_mid_stream_loses_nothing(tmp_path, qos):
    broker = persistent_broker(tmp_path)
    collector = Collector(broker.host, broker.port, ["audeep/+/window"], client_id=f"sub-{qos}", persistent=True)
    sink = MqttSink(MqttSettings(url=broker.url, qos=qos, flush_timeout=15), "restart", INFO)
    assert sink.wait_connected(5)
    seq = 0

    def stream(count: int) -> None:
        nonlocal seq
        for _ in range(count):
            sink.publish_window(window(seq, "restart"))
            seq += 1
            time.sleep(0.01)

    stream(60)
    broker.stop()
    stream(200)  # about 2.5 s with the broker gone
    assert sink.stats()["buffered"] > 0
    broker.start()
    stream(60)
    sink.close()
    assert collector.wait_for(lambda c: set(seqs(c, "restart")) >= set(range(seq)), timeout=10)
    received = seqs(collector, "restart")
    assert first_occurrences(received) == list(range(seq))  # all there, in order; repeats allowed
    assert sink.stats()["dropped"] == 0
    collector.close()
    broker.stop()


def test_a_broker_back_during_the_drain_at_exit_gets_the_whole_buffer(tmp_path):
    """The broker is away for 7.5 s, long enough for a doubling back-off to wait 8 s before the next attempt,
    and returns just before close(): the 5 s drain must reconnect and deliver everything."""
    broker = persistent_broker(tmp_path)
    collector = Collector(broker.host, broker.port, ["audeep/+/window"], client_id="sub-drain", persistent=True)
    sink = MqttSink(MqttSettings(url=broker.url, flush_timeout=5), "drain", INFO)
    assert sink.wait_connected(5)
    broker.stop()
    for seq in range(20):
        sink.publish_window(window(seq, "drain"))
    time.sleep(7.5)
    broker.start()
    sink.close()
    assert sink.failure is None and sink.stats()["buffered"] == 0
    assert collector.wait_for(lambda c: set(seqs(c, "drain")) == set(range(20)))
    assert first_occurrences(seqs(collector, "drain")) == list(range(20))
    collector.close()
    broker.stop()


def test_what_close_cannot_deliver_is_reported_never_silent(tmp_path):
    spool = tmp_path / "spool"
    gone = f"mqtt://127.0.0.1:{free_port()}"
    for queue_dir, fate in ((None, "lost"), (spool, f"saved to {spool / 'audeep_gone.jsonl'}")):
        sink = MqttSink(MqttSettings(url=gone, queue_dir=queue_dir, queue_max=5, flush_timeout=0), "gone", INFO)
        for seq in range(8):
            sink.publish_window(window(seq, "gone"))
        sink.close()
        assert f"5 messages could not be delivered ({fate}" in sink.failure
        assert "3 messages were dropped while --queue-max 5 were waiting" in sink.failure


def test_queue_overflow_drops_the_oldest_and_counts(tmp_path):
    broker = persistent_broker(tmp_path)
    collector = Collector(broker.host, broker.port, ["audeep/+/window"], client_id="sub-overflow", persistent=True)
    sink = MqttSink(MqttSettings(url=broker.url, queue_max=10, flush_timeout=10), "overflow", INFO)
    assert sink.wait_connected(5)
    broker.stop()
    assert wait_until(lambda: not sink.stats()["connected"], timeout=5)
    for seq in range(25):
        sink.publish_window(window(seq, "overflow"))
    assert sink.stats() == {"buffered": 10, "dropped": 15, "connected": False}
    broker.start()
    sink.close()
    assert collector.wait_for(lambda c: len(seqs(c, "overflow")) >= 10)
    assert seqs(collector, "overflow") == list(range(15, 25))
    collector.close()
    broker.stop()


def test_spool_delivers_what_a_previous_run_could_not(mosquitto, tmp_path):
    spool = tmp_path / "spool"
    offline = MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}", queue_dir=spool, flush_timeout=0)
    first = MqttSink(offline, "spooled", INFO)
    for seq in range(5):
        first.publish_window(window(seq, "spooled"))
    first.close()
    assert len((spool / "audeep_spooled.jsonl").read_text().splitlines()) == 5

    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/spooled/window"])
    second = MqttSink(MqttSettings(url=mosquitto.url, queue_dir=spool), "spooled", INFO)
    for seq in range(5, 10):
        second.publish_window(window(seq, "spooled"))
    second.close()
    assert collector.wait_for(lambda c: len(seqs(c, "spooled")) == 10)
    assert seqs(collector, "spooled") == list(range(10))
    assert not (spool / "audeep_spooled.jsonl").exists()
    collector.close()


def test_last_will_marks_a_killed_device_offline(mosquitto):
    code = (
        "import time\n"
        "from audeep_edge.mqtt.settings import MqttSettings\n"
        "from audeep_edge.sinks.mqtt import MqttSink\n"
        f"sink = MqttSink(MqttSettings(url={mosquitto.url!r}), 'doomed', {{}})\n"
        "assert sink.wait_connected(10)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"ready"
        collector = Collector(mosquitto.host, mosquitto.port, ["audeep/doomed/status"])
        assert collector.wait_for(lambda c: [p for p, _ in c.on("audeep/doomed/status")] == [b"online"])
    finally:
        child.kill()
        child.wait()
    assert collector.wait_for(lambda c: len(c.on("audeep/doomed/status")) == 2)
    assert collector.on("audeep/doomed/status")[1][0] == b"offline"
    late = Collector(mosquitto.host, mosquitto.port, ["audeep/doomed/status"])
    assert late.wait_for(lambda c: c.on("audeep/doomed/status") == [(b"offline", True)])
    collector.close()
    late.close()


@pytest.fixture
def auth_broker(tmp_path):
    """A mosquitto that only admits user ``edge`` with password ``s3cret-pw``."""
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "edge", "s3cret-pw"], check=True)
    broker = Mosquitto(tmp_path, extra_conf=f"allow_anonymous false\npassword_file {passwd}\nuser root\n")
    broker.start()
    yield broker
    broker.stop()


def test_refused_credentials_raise_one_clear_line_and_never_log_the_password(auth_broker, tmp_path,
                                                                             caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-pw\n")
    settings = MqttSettings(url=auth_broker.url, username="edge", password_file=wrong)
    sink = MqttSink(settings, "locked", INFO)
    with pytest.raises(BrokerError, match="refused the connection") as refused:
        sink.wait_connected(5)
    assert "\n" not in str(refused.value) and "--password-file" in str(refused.value)
    with pytest.raises(BrokerError):
        sink.publish_window(window(0, "locked"))
    sink.close()

    good = tmp_path / "good"
    good.write_text("s3cret-pw\n")
    from_file = MqttSink(MqttSettings(url=auth_broker.url, username="edge", password_file=good), "f", INFO)
    assert from_file.wait_connected(5)
    from_file.close()
    monkeypatch.setenv("AUDEEP_MQTT_PASSWORD", "s3cret-pw")
    from_env = MqttSink(MqttSettings(url=auth_broker.url, username="edge"), "e", INFO)
    assert from_env.wait_connected(5)
    from_env.close()

    in_url = MqttSettings(url=f"mqtt://edge:s3cret-pw@{auth_broker.host}:{auth_broker.port}")
    assert "s3cret-pw" not in repr(in_url) and "s3cret-pw" not in repr(settings)
    assert "***" in repr(MqttSettings(url=auth_broker.url, username="edge", password="s3cret-pw"))
    assert caplog.records and not any("s3cret-pw" in r.getMessage() or "not-the-pw" in r.getMessage()
                                      for r in caplog.records)


def test_tls_with_a_private_ca(tls_broker):
    collector = Collector(tls_broker.host, tls_broker.port, ["audeep/secure/window"])
    sink = MqttSink(MqttSettings(url=tls_broker.tls_url, ca_file=tls_broker.ca), "secure", INFO)
    assert sink.wait_connected(5)
    sink.publish_window(window(0, "secure"))
    sink.close()
    assert collector.wait_for(lambda c: seqs(c, "secure") == [0])
    collector.close()

    untrusted = MqttSink(MqttSettings(url=tls_broker.tls_url, flush_timeout=0), "untrusted", INFO)
    assert wait_until(lambda: untrusted.last_error is not None, timeout=5)
    assert "certificate verify failed" in untrusted.last_error
    assert not untrusted.stats()["connected"]
    untrusted.close()
