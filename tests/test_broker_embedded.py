"""The embedded zero-setup broker: paho clients publish/subscribe, retained messages and last wills work,
a taken port falls back to another one, the MQTT sink streams through it, and only its generated credentials
get in."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
import pytest
from mqtt_testing import Collector, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from audeep_edge.errors import BrokerError
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sinks.broker import DEFAULT_PORT, start_embedded_broker
from audeep_edge.sinks.mqtt import MqttSink


@pytest.fixture
def embedded():
    broker = start_embedded_broker(port=None)
    yield broker
    broker.stop()


def collector(broker, topics) -> Collector:
    return Collector(broker.host, broker.port, topics, username=broker.username, password=broker.password)


def connack(broker, username: str | None = None, password: str | None = None) -> str:
    """The broker's answer to a paho client logging in with these credentials."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    if username is not None:
        client.username_pw_set(username, password)
    answers = []
    client.on_connect = lambda _client, _userdata, _flags, reason_code, _properties: answers.append(str(reason_code))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert wait_until(lambda: answers, timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]


def test_only_the_generated_credentials_get_in(embedded):
    assert connack(embedded) == "Not authorized"  # any local process, anonymously
    assert connack(embedded, "audeep", "guessed") == "Not authorized"
    assert connack(embedded, embedded.username, embedded.password) == "Success"
    assert embedded.password_file.read_text().strip() == embedded.password
    assert embedded.password_file.stat().st_mode & 0o077 == 0  # only this user can read it
    password_file = embedded.password_file
    embedded.stop()
    assert not password_file.exists()


def test_paho_clients_get_live_and_retained_messages_and_last_wills(embedded):
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.username_pw_set(embedded.username, embedded.password)
    publisher.will_set("t/status", "offline", qos=1, retain=True)
    publisher.connect(embedded.host, embedded.port)
    publisher.loop_start()
    publisher.publish("t/status", "online", qos=1, retain=True).wait_for_publish(5)

    live = collector(embedded, ["t/#"])
    assert live.wait_for(lambda c: c.on("t/status") == [(b"online", True)])  # retained, sent on subscribe
    publisher.publish("t/data", "42", qos=0).wait_for_publish(5)
    assert live.wait_for(lambda c: c.on("t/data") == [(b"42", False)])

    publisher.loop_stop()
    publisher.socket().close()  # dies without DISCONNECT: the broker publishes the will
    assert live.wait_for(lambda c: [p for p, _ in c.on("t/status")] == [b"online", b"offline"])
    late = collector(embedded, ["t/status"])
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
    watcher = collector(embedded, ["audeep/#"])
    sink = MqttSink(MqttSettings(url=embedded.client_url), "embedded", {"bundle": "test"})
    assert sink.wait_connected(5)
    for seq in range(100):
        sink.publish_window({"schema_version": 1, "device_id": "embedded", "seq": seq})
    sink.close()
    assert sink.stats()["buffered"] == 0 and sink.failure is None
    assert watcher.wait_for(lambda c: [p for p, _ in c.on("audeep/embedded/status")] == [b"online", b"offline"])
    assert [w["seq"] for w in watcher.json("audeep/embedded/window")] == list(range(100))
    watcher.close()
