"""The embedded zero-setup broker: paho clients publish/subscribe, retained messages and last wills work,
a taken port falls back to another one, and the MQTT sink streams through it."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
import pytest
from mqtt_testing import Collector
from paho.mqtt.enums import CallbackAPIVersion

from audeep_edge.errors import BrokerError
from audeep_edge.sinks.broker import DEFAULT_PORT, start_embedded_broker
from audeep_edge.sinks.mqtt import MqttSettings, MqttSink


@pytest.fixture
def embedded():
    broker = start_embedded_broker(port=None)
    yield broker
    broker.stop()


def test_paho_clients_get_live_and_retained_messages_and_last_wills(embedded):
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.will_set("t/status", "offline", qos=1, retain=True)
    publisher.connect(embedded.host, embedded.port)
    publisher.loop_start()
    publisher.publish("t/status", "online", qos=1, retain=True).wait_for_publish(5)

    live = Collector(embedded.host, embedded.port, ["t/#"])
    assert live.wait_for(lambda c: c.on("t/status") == [(b"online", True)])  # retained, sent on subscribe
    publisher.publish("t/data", "42", qos=0).wait_for_publish(5)
    assert live.wait_for(lambda c: c.on("t/data") == [(b"42", False)])

    publisher.loop_stop()
    publisher.socket().close()  # dies without DISCONNECT: the broker publishes the will
    assert live.wait_for(lambda c: [p for p, _ in c.on("t/status")] == [b"online", b"offline"])
    late = Collector(embedded.host, embedded.port, ["t/status"])
    assert late.wait_for(lambda c: c.on("t/status") and c.on("t/status")[-1] == (b"offline", True))
    live.close()
    late.close()


def test_a_taken_port_falls_back_to_a_free_one():
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT from earlier tests
        try:
            squatter.bind(("127.0.0.1", DEFAULT_PORT))
            squatter.listen()
        except OSError:
            pass  # something else already holds 1883: the fallback is exercised all the same
        broker = start_embedded_broker()
        try:
            assert broker.port != DEFAULT_PORT
            assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
            with pytest.raises(BrokerError, match=f"cannot listen on 127.0.0.1:{broker.port}"):
                start_embedded_broker(port=broker.port)
        finally:
            broker.stop()


def test_the_mqtt_sink_streams_through_the_embedded_broker(embedded):
    collector = Collector(embedded.host, embedded.port, ["audeep/#"])
    sink = MqttSink(MqttSettings(url=embedded.url), "embedded", {"bundle": "test"})
    assert sink.wait_connected(5)
    for seq in range(100):
        sink.publish_window({"schema_version": 1, "device_id": "embedded", "seq": seq})
    sink.close()
    assert sink.stats()["buffered"] == 0
    assert collector.wait_for(lambda c: [p for p, _ in c.on("audeep/embedded/status")] == [b"online", b"offline"])
    assert [w["seq"] for w in collector.json("audeep/embedded/window")] == list(range(100))
    collector.close()
