"""Home Assistant MQTT discovery against a real mosquitto: every entity HA is told about is retained and valid for
its platform (HA's discovery schema: required keys, unique ids, one device, availability), and every template
renders a valid state with Jinja2 (HA's template engine) for real payloads, null and missing fields included."""

from __future__ import annotations

import json

import pytest
from mqtt_testing import Collector

from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sinks.homeassistant import EVENT_TYPES, Entities, discovery_messages
from audeep_edge.sinks.mqtt import MqttSink

jinja2 = pytest.importorskip("jinja2")  # in the [dev] extra
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

INFO = {"bundle": "esc10-t-rae-int8", "precision": "int8", "labels": ["Dog bark", "Rain", "Rooster"],
        "embedding_size": 1024, "window_seconds": 5.0, "hop_seconds": 1.0, "novelty_threshold": 0.95}
ENTITIES = Entities(novelty=True, watch=("Dog bark", 'Baby "cry"'), watch_min_score=0.7,
                    configuration_url="http://dashboard.lan:8080/")
WINDOW = {"schema_version": 1, "device_id": "lab.1", "seq": 7, "audio_time": 8.0, "wall_time": 1764160000.0,
          "label": "Dog bark", "confidence": 0.81, "top_k": [{"label": "Dog bark", "p": 0.81}, {"label": "Rain", "p": 0.1}],
          "smoothed_label": "Rain", "smoothed_confidence": 0.62, "dbfs": -23.44, "novelty": 0.9712, "novel": True}
NULLS = {"schema_version": 1, "device_id": "lab.1", "seq": 8, "label": None, "confidence": None, "top_k": None,
         "smoothed_label": None, "smoothed_confidence": None, "dbfs": None, "novelty": None}
HEALTH = {"schema_version": 1, "device_id": "lab.1", "wall_time": 1764160010.0, "uptime_s": 600.2, "rtf": 0.008,
          "latency_ms_p50": 4.1, "latency_ms_p99": 9.7, "overruns": 0, "queue_depth": 0, "dropped": 2, "buffered": 0}
EVENTS = [{"type": "novel", "state": "start", "seq": 7, "peak": 0.99, "wall_time": 1.0},
          {"type": "novel", "state": "end", "seq": 9, "peak": 0.99, "duration": 2.0, "wall_time": 2.0},
          {"type": "label_change", "seq": 7, "label": "Rain", "previous": "Dog bark", "wall_time": 1.0}]


def render(template: str, payload: dict) -> str:
    """``template`` as HA renders an MQTT value template; undefined values raise instead of rendering empty."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(value=json.dumps(payload), value_json=payload).strip()


def check_states(topic: str, config: dict) -> None:
    """Render the entity's template for full, null and missing fields and check each state HA would get."""
    component, kind = topic.split("/")[1], topic.split("/")[2].removeprefix("lab_1_")
    feed = {"window": [WINDOW, NULLS, {"schema_version": 1}], "health": [HEALTH, {**HEALTH, "rtf": None,
            "latency_ms_p99": None}], "event": EVENTS}[config["state_topic"].rsplit("/", 1)[1]]
    for payload in feed:
        state = render(config["value_template"], payload)
        assert state != "None" and "Undefined" not in state, (topic, payload, state)
        if component == "event":
            assert json.loads(state)["event_type"] in EVENT_TYPES
        elif component == "binary_sensor":
            assert state in ("ON", "OFF", ""), (topic, state)  # "" is ignored by HA
        elif "options" in config:
            assert state in config["options"] or state == "", state
        elif state:
            float(state)
    if kind == "novel":
        assert [render(config["value_template"], p) for p in (WINDOW, {**WINDOW, "novel": False}, NULLS)] == \
            ["ON", "OFF", ""]
    if kind == "watch_dog_bark":
        assert [render(config["value_template"], p) for p in (WINDOW, {**WINDOW, "top_k": [
            {"label": "Dog bark", "p": 0.69}]}, NULLS)] == ["ON", "OFF", "OFF"]


def test_entities_are_valid_discovery_with_safe_templates_and_follow_label_changes(mosquitto):
    collector = Collector(mosquitto.host, mosquitto.port, ["homeassistant/#"])
    sink = MqttSink(MqttSettings(url=mosquitto.url, homeassistant=True), "lab.1", INFO, entities=ENTITIES)
    assert sink.wait_connected(5)
    expected = {f"homeassistant/{entity}/config" for entity in (
        "sensor/lab_1_scene", "sensor/lab_1_confidence", "sensor/lab_1_dbfs", "sensor/lab_1_novelty",
        "binary_sensor/lab_1_novel", "binary_sensor/lab_1_watch_dog_bark", "binary_sensor/lab_1_watch_baby_cry",
        "event/lab_1_event", "sensor/lab_1_rtf", "sensor/lab_1_latency", "sensor/lab_1_overruns",
        "sensor/lab_1_dropped", "sensor/lab_1_buffered")}
    assert collector.wait_for(lambda c: {topic for topic, _, _ in c.messages} >= expected)
    late = Collector(mosquitto.host, mosquitto.port, ["homeassistant/+/+/config"])  # what HA finds retained
    assert late.wait_for(lambda c: {t for t, _, retain in c.messages if retain} >= expected)
    configs = {topic: json.loads(payload) for topic, payload, retain in late.messages if retain}
    assert set(configs) == expected

    assert len({config["unique_id"] for config in configs.values()}) == len(configs)
    for topic, config in configs.items():
        assert config["name"] and config["unique_id"].startswith("audeep_lab_1_"), topic
        assert config["state_topic"].startswith("audeep/lab.1/") and "json_attributes_topic" not in config, topic
        assert (config["availability_topic"], config["payload_available"], config["payload_not_available"]) == \
            ("audeep/lab.1/status", "online", "offline")
        assert config["device"] == {"identifiers": ["audeep_lab_1"], "name": "auDeep lab.1",
                                    "manufacturer": "audeep-edge", "model": "esc10-t-rae-int8",
                                    "sw_version": config["origin"]["sw_version"],
                                    "configuration_url": "http://dashboard.lan:8080/"}
        health = config["state_topic"].endswith("/health")
        assert (config.get("entity_category") == "diagnostic") == health, topic
        if topic.startswith("homeassistant/binary_sensor/"):
            assert config["device_class"] == "sound"
        check_states(topic, config)
    scene = configs["homeassistant/sensor/lab_1_scene/config"]
    assert scene["device_class"] == "enum" and scene["options"] == INFO["labels"]
    assert not {"unit_of_measurement", "state_class"} & set(scene)  # HA refuses them on an enum sensor
    assert configs["homeassistant/event/lab_1_event/config"]["event_types"] == list(EVENT_TYPES)
    assert configs["homeassistant/sensor/lab_1_latency/config"]["unit_of_measurement"] == "ms"

    sink.update_info({"labels": [*INFO["labels"], "doorbell"], "enrolled_labels": ["doorbell"]})  # enroll
    scene_topic = "homeassistant/sensor/lab_1_scene/config"
    assert collector.wait_for(lambda c: json.loads(c.on(scene_topic)[-1][0])["options"][-1] == "doorbell")
    count = len(collector.on(scene_topic))
    collector.client.publish("homeassistant/status", "online").wait_for_publish(5)  # HA restarted
    assert collector.wait_for(lambda c: len(c.on(scene_topic)) > count)
    sink.close()
    collector.close()
    late.close()


def test_entities_that_do_not_apply_are_removed():
    """No novelty baseline and no classifier: their entities get empty configs, which delete stale ones in HA."""
    messages = dict(discovery_messages("lab", {**INFO, "labels": []}))
    for entity in ("sensor/lab_scene", "sensor/lab_confidence", "sensor/lab_novelty", "binary_sensor/lab_novel"):
        assert messages[f"homeassistant/{entity}/config"] == ""
    assert json.loads(messages["homeassistant/sensor/lab_dbfs/config"])["unique_id"] == "audeep_lab_dbfs"
