"""JSONL sink, strict JSON encoding, MQTT settings validation and the documented schema (docs/mqtt.md)."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from stream_testing import CLI, RAIN, TINY, assert_one_error_line

from audeep_edge.errors import ConfigError
from audeep_edge.mqtt.settings import MqttSettings, check_device_id
from audeep_edge.sinks.homeassistant import Entities, discovery_messages
from audeep_edge.sinks.jsonl import JsonlSink
from audeep_edge.sinks.payload import to_json

DOCS = Path(__file__).resolve().parents[1] / "docs" / "mqtt.md"
WINDOW_KEYS = {"schema_version", "device_id", "seq", "audio_time", "wall_time", "label", "confidence", "top_k",
               "smoothed_label", "smoothed_confidence", "dbfs"}


def test_jsonl_file_has_one_tagged_object_per_line(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path, info={"device_id": "kitchen", "bundle": "b"})
    sink.publish_window({"seq": 0, "confidence": np.float32(0.5), "novelty": float("nan"),
                         "embedding": np.array([1.0, 2.0], dtype=np.float16)})
    sink.publish_health({"rtf": 0.01})
    sink.publish_event({"type": "novel"})
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["topic"] for line in lines] == ["info", "window", "health", "event"]
    assert lines[0] == {"topic": "info", "schema_version": 1, "device_id": "kitchen", "bundle": "b"}
    assert lines[1] == {"topic": "window", "seq": 0, "confidence": 0.5, "novelty": None, "embedding": [1.0, 2.0]}

    JsonlSink(path).publish_window({"seq": 1})  # a restart appends
    assert json.loads(path.read_text().splitlines()[-1]) == {"topic": "window", "seq": 1}


def test_jsonl_writes_info_again_when_the_labels_change(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path, info={"device_id": "kitchen", "labels": ["Rain"], "enrolled_labels": []})
    sink.publish_window({"seq": 0})
    sink.update_info({"labels": ["Rain", "kettle"], "enrolled_labels": ["kettle"]})
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["topic"] for line in lines] == ["info", "window", "info"]
    assert lines[2] == {"topic": "info", "schema_version": 1, "device_id": "kitchen", "labels": ["Rain", "kettle"],
                        "enrolled_labels": ["kettle"]}


def test_jsonl_to_stdout(capsys):
    sink = JsonlSink("-")
    sink.publish_window({"seq": 7})
    sink.close()
    assert capsys.readouterr().out == '{"topic":"window","seq":7}\n'


def test_jsonl_unwritable_target_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^--jsonl .*missing.*: cannot write"):
        JsonlSink(tmp_path / "missing" / "out.jsonl")


def test_a_full_disk_leaves_whole_lines_and_one_error_line(tmp_path):
    """The log (98 kB from earlier runs) may grow to 100 kB only (RLIMIT_FSIZE: the kernel cuts short the write
    that crosses the limit and fails the next, as on a full disk): it still ends in a whole line, and `listen`
    says in one line what it could not write."""
    out = tmp_path / "out.jsonl"
    earlier = '{"topic":"health","schema_version":1,"device_id":"d","uptime_s":1.0}\n'
    out.write_text(earlier * (98_000 // len(earlier)))

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # report EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    done = subprocess.run([CLI, "listen", "--file", str(RAIN), "--bundle", str(TINY), "--broker", "none",
                           "--jsonl", str(out)], capture_output=True, text=True, timeout=120, preexec_fn=small_disk)
    text = out.read_text()
    assert text.endswith("\n") and len(text) <= 100_000
    lines = [json.loads(line) for line in text.splitlines()]  # every line parses
    written = len(lines) - 98_000 // len(earlier)
    assert lines[-written]["topic"] == "info" and 1 < written < 13  # some of the 11 windows (+ health) made it
    assert_one_error_line(done, f"--jsonl {out}: File too large after {written} lines")


def test_payload_json_is_strict_and_compact():
    assert to_json({"a": [1.5, float("inf")], "b": np.int64(3)}) == '{"a":[1.5,null],"b":3}'


@pytest.mark.parametrize(("options", "message"), [
    ({"url": "http://host"}, r"^--broker: expected mqtt://"),
    ({"url": "mqtt://host:99999"}, r"^--broker"),
    ({"protocol": "4"}, r"^--protocol '4': expected one of 3\.1\.1, 5"),
    ({"qos": 2}, r"^--qos 2: expected 0 or 1"),
    ({"topic_prefix": "a/#"}, r"^--topic-prefix"),
    ({"queue_max": 0}, r"^--queue-max 0"),
    ({"ca_file": "ca.pem"}, r"^--ca-file needs an mqtts://"),
    ({"url": "mqtts://h", "ca_file": "/nonexistent/ca.pem"}, r"^--ca-file /nonexistent/ca.pem: no such file"),
    ({"url": "mqtts://h", "key_file": "k.pem"}, r"^--key-file needs --cert-file"),
    ({"password": "pw"}, r"^a broker password needs --username"),
])
def test_invalid_settings_are_one_clear_line(options, message):
    with pytest.raises(ConfigError, match=message) as error:
        MqttSettings(**options)
    assert "\n" not in str(error.value)


def test_password_sources_and_masking(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDEEP_MQTT_PASSWORD", raising=False)
    secret = tmp_path / "pw"
    secret.write_text("from-file\nignored\n")
    assert MqttSettings(username="u", password_file=secret).credentials() == ("u", "from-file")
    monkeypatch.setenv("AUDEEP_MQTT_PASSWORD", "from-env")
    assert MqttSettings(username="u").credentials() == ("u", "from-env")
    settings = MqttSettings(url="mqtt://u:from-url@h")
    assert settings.credentials() == ("u", "from-url")
    assert MqttSettings(username="u", password="given").credentials() == ("u", "given")
    assert "from-url" not in repr(settings) and "from-url" not in str(settings)
    with pytest.raises(ConfigError, match="--broker: .*'mqtt://u:\\*\\*\\*@h:x'") as error:
        MqttSettings(url="mqtt://u:hunter2@h:x")
    assert "hunter2" not in str(error.value)
    secret.write_text("")
    with pytest.raises(ConfigError, match="--password-file .*: the first line is empty"):
        MqttSettings(username="u", password_file=secret).credentials()


@pytest.mark.parametrize("device_id", ["", "a/b", "a+b", "#", "a b", "x" * 65])
def test_device_ids_that_cannot_be_a_topic_level_are_rejected(device_id):
    with pytest.raises(ConfigError, match="--device-id"):
        check_device_id(device_id)


def test_home_assistant_templates_read_fields_that_windows_and_events_carry():
    entities = Entities(novelty=True, watch=("Rain",))
    configs = {topic: json.loads(payload) for topic, payload in
               discovery_messages("kitchen", {"bundle": "b", "labels": ["Rain"]}, entities=entities)}
    used: dict[str, set] = {"window": set(), "event": set(), "health": set()}
    for config in configs.values():
        used[config["state_topic"].rsplit("/", 1)[1]] |= set(re.findall(r"value_json\.(\w+)", config["value_template"]))
    assert used["window"] <= WINDOW_KEYS | {"novelty", "novel"}
    assert used["event"] <= {"type", "state"}
    assert used["health"] <= {"rtf", "latency_ms_p99", "overruns", "dropped", "buffered"}
    assert {config["availability_topic"] for config in configs.values()} == {"audeep/kitchen/status"}
    assert len({config["unique_id"] for config in configs.values()}) == len(configs)


def test_documented_examples_are_valid_schema_v1():
    """docs/mqtt.md is the public contract: its JSON examples must parse and carry the documented keys."""
    text = DOCS.read_text()
    examples = {name: json.loads(body) for name, body in
                re.findall(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", text, flags=re.S)}
    assert set(examples) == {"info", "window", "health", "event", "jsonl"}
    assert WINDOW_KEYS <= set(examples["window"])
    assert {"schema_version", "device_id", "bundle", "precision", "labels", "embedding_size", "window_seconds",
            "hop_seconds"} <= set(examples["info"])
    assert {"schema_version", "device_id", "wall_time", "uptime_s", "rtf", "latency_ms_p50", "latency_ms_p99",
            "overruns", "queue_depth", "dropped", "buffered"} <= set(examples["health"])
    assert examples["event"]["type"] in ("novel", "label_change")
    assert examples["jsonl"]["topic"] == "window"
    assert all(example["schema_version"] == 1 for example in examples.values())
