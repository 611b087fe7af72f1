"""The subscribers' one validator (audeep_edge.mqtt.messages): the dashboard and the recorder accept and refuse
the same messages, non-finite numbers included."""

from __future__ import annotations

import json

import pytest

from audeep_edge.dashboard.mqtt_state import FleetState
from audeep_edge.mqtt.messages import MAX_PAYLOAD, BadMessage, UnsupportedSchema, parse_message, split_topic
from audeep_edge.recorder.records import parse


def window(**fields) -> bytes:
    return json.dumps({"schema_version": 1, "seq": 1, "wall_time": 1.7e9, "label": "Rain", **fields}).encode()


CASES = [  # kind, payload, valid
    ("window", window(), True),
    ("window", b'{"seq": 1, "wall_time": NaN, "label": "Rain"}', False),
    ("window", b'{"seq": 1, "wall_time": 1.7e9, "label": "Rain", "dbfs": -Infinity}', False),
    ("window", b'{"seq": 1, "wall_time": 1e999, "label": "Rain"}', False),  # a float literal beyond float range
    ("window", window(dbfs=10**400), True),  # an exact integer beyond float range: that level counts as absent
    ("window", window(top_k=7), True),  # a malformed optional field counts as absent
    ("window", window(label=3), False),
    ("window", window(smoothed_label="x" * 201), False),
    ("window", window(label="x" * MAX_PAYLOAD), False),
    ("window", b"[" * 100_000, False),
    ("health", b'{"schema_version": 1, "rtf": Infinity}', False),
    ("health", b'{"schema_version": 1, "rtf": 0.01}', True),
    ("event", b'{"schema_version": 1, "type": "novel", "peak": NaN}', False),
    ("event", b'{"schema_version": 1, "type": ""}', False),
    ("event", b'{"schema_version": 1, "type": "novel", "label": null}', True),
    ("info", b'{"schema_version": 2, "labels": []}', False),
    ("info", b'[1, 2]', False),
    ("status", b"online", True),
    ("status", b"", True),  # a cleared retained status
    ("status", b"sideways", False),
]


@pytest.mark.parametrize("kind, payload, valid", CASES)
def test_the_dashboard_and_the_recorder_accept_the_same_messages(kind, payload, valid):
    state = FleetState()
    assert state.handle_message("kitchen", kind, payload) is valid
    assert state.stats()["bad_messages"] == (0 if valid else 1)
    assert (parse("kitchen", kind, payload, 1.0) is not None) is valid


def test_another_schema_version_and_a_foreign_topic_are_told_apart():
    with pytest.raises(UnsupportedSchema):
        parse_message("kitchen", "info", b'{"schema_version": 2}')
    for device_id, kind in (("no/such id", "window"), ("kitchen", "weather")):
        with pytest.raises(BadMessage):
            parse_message(device_id, kind, window())
    assert split_topic("home/audeep/kitchen/window", "home/audeep") == ("kitchen", "window")
    assert split_topic("audeepx/kitchen/window", "audeep") == ("", "")
