"""The recorder against a real mosquitto and real databases (an SQLite file; a PostgreSQL server started here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.recorder import Recorder, Retention, ingest, open_store
from audeep_edge.sinks.mqtt import MqttSink
from conftest import Mosquitto, cli
from history_testing import Publisher, clip, ogg_clip, window
from mqtt_testing import wait_until
from postgres_testing import db_url, postgres_server  # noqa: F401 (fixtures)

INFO = {"bundle": "esc10-test", "labels": ["Rain", "Dog", "Sea waves", "Crackling fire"], "hop_seconds": 1.0}


def recording(broker, location: str, retention: Retention | None = None, client_id: str | None = None):
    store = open_store(location)
    recorder = Recorder(MqttSettings(url=broker.url, client_id=client_id), store, retention)
    recorder.start()
    assert recorder.wait_connected(10)
    return recorder, store


def test_a_byte_bound_on_the_recorder_queue_slows_intake_and_loses_nothing(mosquitto, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "QUEUE_MAX_BYTES", 1)  # every message waits until the writer took the last one
    recorder, store = recording(mosquitto, str(tmp_path / "h.sqlite"))
    t0 = time.time() - 100
    sink = MqttSink(MqttSettings(url=mosquitto.url), "kitchen", INFO)
    for seq in range(50):
        sink.publish_window(window("kitchen", seq, t0 + seq, "Rain"))
    sink.close()
    assert wait_until(lambda: store.history("kitchen", t0, t0 + 100, 10)["windows"] == 50, 20)
    assert wait_until(lambda: recorder.stats()["pending"] == 0)


def test_a_fleet_is_recorded_once_whatever_the_broker_repeats(mosquitto, db_url):
    recorder, store = recording(mosquitto, db_url)
    t0 = time.time() - 100
    sinks = {name: MqttSink(MqttSettings(url=mosquitto.url), name, INFO) for name in ("kitchen", "garden")}
    for name, sink in sinks.items():
        for seq in range(20):
            sink.publish_window(window(name, seq, t0 + seq, "Rain" if seq < 15 else "Dog"))
        sink.publish_health({"schema_version": 1, "device_id": name, "wall_time": t0 + 20, "rtf": 0.01})
        sink.publish_event({"schema_version": 1, "device_id": name, "wall_time": t0 + 15, "type": "label_change",
                            "seq": 15, "label": "Dog", "previous": "Rain"})
    sinks["kitchen"].publish_event({"schema_version": 1, "device_id": "kitchen", "wall_time": t0 + 17,
                                    "type": "novel", "seq": 17, "state": "start", "peak": 0.99})
    audio = ogg_clip()
    publisher = Publisher(mosquitto)
    publisher.send("kitchen", "clip", clip("kitchen", "1700-novel", 17, t0 + 16, audio))
    publisher.send("kitchen", "window", window("kitchen", 3, t0 + 3, "Rain"))  # a redelivery: stored once
    for sink in sinks.values():
        sink.close()

    assert wait_until(lambda: store.history("garden", t0, t0 + 100, 10)["windows"] == 20
                      and any(d["status"] == "offline" for d in store.devices()), 15)
    assert wait_until(lambda: recorder.stats()["pending"] == 0)
    kitchen = store.history("kitchen", t0, t0 + 100, 10)
    assert kitchen["windows"] == 20 and kitchen["labels"] == {"Rain": 15, "Dog": 5}
    assert [b[2] for b in kitchen["buckets"]] == [10, 10] and kitchen["buckets"][1][1] == "Dog"
    assert sum(sum(counts.values()) for _, counts in kitchen["hourly"]) == 20
    devices = {d["id"]: d for d in store.devices()}
    assert devices["kitchen"]["status"] == "offline" and devices["kitchen"]["info"]["labels"] == INFO["labels"]
    events = store.events(t0, t0 + 100, device_id="kitchen")
    assert [e["type"] for e in events] == ["novel", "label_change"]
    assert events[0]["clip"]["clip_id"] == "1700-novel" and events[0]["clip"]["size"] == len(audio)
    assert store.clip("kitchen", "1700-novel") == ("ogg", audio)
    assert [e["type"] for e in store.events(t0, t0 + 100, types=("label_change",))] == ["label_change"] * 2
    assert store.events(t0, t0 + 100, label="Nothing") == []
    assert recorder.stats()["bad"] == 0
    recorder.stop()
    store.close()
    publisher.close()


def test_hostile_messages_are_counted_and_dropped_and_recording_goes_on(mosquitto, tmp_path):
    recorder, store = recording(mosquitto, str(tmp_path / "h.sqlite"))
    publisher = Publisher(mosquitto)
    now = time.time()
    bad = [
        ("kitchen", "window", b"{not json"),
        ("kitchen", "window", b'{"seq": 1, "wall_time": NaN, "label": "Rain"}'),
        ("kitchen", "window", json.dumps({"seq": 2, "wall_time": now, "label": 7})),
        ("kitchen", "window", json.dumps(window("kitchen", 3, now, "Rain", schema_version=2))),
        ("kitchen", "window", json.dumps(window("kitchen", 4, now, "x" * 1000))),
        ("kitchen", "window", b"[" * 300_000),
        ("kitchen", "event", json.dumps({"wall_time": now, "type": None})),
        ("kitchen", "clip", json.dumps(clip("kitchen", "c1", 1, now, b"RIFF....WAVE"))),  # not an OGG
        ("kitchen", "clip", json.dumps({**clip("kitchen", "c2", 1, now, b"OggS"), "audio_b64": "%%%"})),
        ("kitchen", "clip", json.dumps(clip("kitchen", "../../etc", 1, now, b"OggS"))),
        ("kitchen", "status", b"sideways"),
        ("bad device", "window", json.dumps(window("x", 5, now, "Rain"))),
    ]
    for device_id, kind, payload in bad:
        publisher.send(device_id, kind, payload)
    publisher.send("kitchen", "window", window("kitchen", 9, now, "Dog", dbfs=10**400))  # kept, without a level
    assert wait_until(lambda: store.history("kitchen", now - 1, now + 1, 2)["windows"] == 1)
    assert recorder.stats()["bad"] == len(bad)
    assert store.events(now - 1, now + 1) == []
    recorder.stop()
    store.close()
    publisher.close()


def test_retention_by_age_and_size_is_enforced_while_recording(mosquitto, db_url):
    retention = Retention(max_age_s=86400, max_bytes=2 << 20, interval_s=0.2)
    recorder, store = recording(mosquitto, db_url, retention)
    publisher = Publisher(mosquitto)
    now = time.time()
    old = now - 3 * 86400
    for seq in range(10):
        publisher.send("attic", "window", window("attic", seq, old + seq, "Rain"))
    assert wait_until(lambda: recorder.stats()["stored"] >= 10)
    assert wait_until(lambda: store.history("attic", old - 1, now, 3600)["windows"] == 0), "older than --keep"

    audio = b"OggS" + os.urandom(600_000)  # incompressible: 6 of them are 3.6 MB, over the 2 MiB bound
    for i in range(6):
        t = now - 3600 + 600 * i
        publisher.send("attic", "window", window("attic", 100 + i, t, "Dog"))
        publisher.send("attic", "clip", clip("attic", f"c{i}", 100 + i, t, audio))
    assert wait_until(lambda: recorder.stats()["stored"] >= 22 and store.used_bytes() <= 2 << 20, 20)
    kept = [e["clip"]["clip_id"] for e in store.events(now - 7200, now + 1)]
    assert 1 <= len(kept) <= 3 and kept[0] == "c5", "the newest clips stay, the oldest go"
    recorder.stop()
    store.close()
    publisher.close()


def test_views_of_days_read_hourly_counts_that_match_every_window(db_url):
    """Ranges of hours read the hourly counts kept with the windows: they must agree with the windows themselves,
    also after a batch with repeats and after retention cut an hour in two."""
    from audeep_edge.recorder.records import Window

    store = open_store(db_url)
    start = 1_700_000_000.0 // 3600 * 3600 + 1234.5
    rows = [Window("den", start + 7 * i, i, ["Rain", "Dog", None][i % 3 if i % 50 else 2], "Rain", 0.5, -20.0,
                   (i % 97) / 97) for i in range(3000)]  # 5.8 hours
    store.write(rows[:1000])
    store.write(rows[900:3000])  # 100 repeats: the hours of this batch are counted again
    store.write(rows[2990:3000])  # only repeats

    def both(t0: float, t1: float) -> tuple[dict, dict]:
        return store.history("den", t0, t1, 3600), store.history("den", t0, t1, 60)

    for t0, t1 in ((start - 10, start + 21000), (start + 500, start + 15000), (start + 100, start + 2000)):
        hourly, exact = both(t0, t1)
        assert hourly["windows"] == exact["windows"] > 0 and hourly["labels"] == exact["labels"]
        assert hourly["hourly"] == exact["hourly"] and hourly["bucket_s"] == 3600
        assert [b[2] for b in hourly["buckets"]] == [sum(c.values()) for _, c in hourly["hourly"]]
    assert both(start - 10, start + 21000)[0]["windows"] == 3000
    assert set(both(start - 10, start + 21000)[0]["labels"]) == {"Rain", "Dog", "null"}
    store.delete_before(start + 7 * 1500 + 0.5)  # mid-hour
    hourly, exact = both(start - 10, start + 21000)
    assert hourly["windows"] == exact["windows"] == 1499 and hourly["hourly"] == exact["hourly"]
    store.close()


def test_scores_keep_double_precision_in_both_dialects(db_url):
    """One schema rendered for SQLite and PostgreSQL: every float column holds 8 bytes (a PostgreSQL REAL would
    round the novelty to 7 digits), in the windows and in the hourly counts alike."""
    from audeep_edge.recorder.records import Window

    store = open_store(db_url)
    hour, novelty = 1_700_000_000.0 // 3600 * 3600, 0.123456789012345
    store.write([Window("den", hour + 0.5, 0, "Rain", "Rain", 0.987654321012, -23.456789012, novelty)])
    assert store.history("den", hour, hour + 60, 60)["buckets"][0][3] == novelty  # from windows
    assert store.history("den", hour - 3600, hour + 7200, 3600)["buckets"][0][3] == novelty  # from hours
    store.close()


def test_a_postgresql_history_with_4_byte_columns_is_widened_when_opened(postgres_server):
    """A history written by an older recorder (REAL scores and times) keeps its rows and stores new ones exactly."""
    import psycopg

    from audeep_edge.recorder.records import Window

    url = postgres_server.database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE windows (device_id TEXT NOT NULL, wall_time REAL NOT NULL, seq BIGINT NOT NULL, "
                     "label TEXT, raw_label TEXT, confidence REAL, dbfs REAL, novelty REAL, "
                     "PRIMARY KEY (device_id, wall_time, seq))")
        conn.execute("INSERT INTO windows VALUES ('den', 1000.5, 0, 'Rain', NULL, 0.5, -20.0, 0.25)")
    store = open_store(url)
    with psycopg.connect(url) as conn:
        types = conn.execute("SELECT DISTINCT data_type FROM information_schema.columns "
                             "WHERE table_name = 'windows' AND column_name IN ('wall_time', 'novelty')").fetchall()
    assert types == [("double precision",)]
    hour, novelty = 1_700_000_000.0 // 3600 * 3600, 0.123456789012345
    store.write([Window("den", hour + 0.5, 1, "Rain", "Rain", 0.9, -23.0, novelty)])
    assert store.history("den", hour, hour + 60, 60)["buckets"][0][3] == novelty
    assert store.history("den", 1000, 1060, 60)["buckets"][0][3] == 0.25  # the old row is still there
    store.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_what_is_published_while_the_recorder_is_away_is_stored_at_its_next_start(mosquitto, tmp_path, protocol):
    store = open_store(str(tmp_path / "h.sqlite"))
    settings = MqttSettings(url=mosquitto.url, protocol=protocol)
    recorder = Recorder(settings, store)
    recorder.start()
    assert recorder.wait_connected(10)
    recorder.stop()
    publisher = Publisher(mosquitto)
    now = time.time()
    for seq in range(20):
        publisher.send("shed", "window", window("shed", seq, now + seq, "Rain"))
    recorder = Recorder(settings, store)  # the same default client id: its session, with the 20 windows queued
    recorder.start()
    assert wait_until(lambda: store.history("shed", now - 1, now + 60, 10)["windows"] == 20)
    recorder.stop()
    store.close()
    publisher.close()


def test_nothing_is_lost_when_the_recorder_is_killed_or_the_broker_restarts(tmp_path):
    broker = Mosquitto(tmp_path, extra_conf=f"persistence true\npersistence_location {tmp_path}/\nuser root\n")
    broker.start()
    db = str(tmp_path / "history.sqlite")
    command = [sys.executable, "-c", "from audeep_edge.cli import main; main()", "record", "--broker", broker.url,
               "--db", db]
    recorder = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    store = open_store(db)
    sink = MqttSink(MqttSettings(url=broker.url), "porch", INFO)
    published, stop = [0], threading.Event()
    start = time.time() - 600

    def stream() -> None:
        while not stop.is_set():
            seq = published[0]
            sink.publish_window(window("porch", seq, start + seq * 0.5, "Rain"))
            published[0] += 1
            time.sleep(0.004)

    def stored() -> int:
        return store.history("porch", start, start + 10**5, 10**5)["windows"]

    try:
        assert wait_until(lambda: "recording:" in recorder.stderr.readline(), 20)
        streamer = threading.Thread(target=stream)
        streamer.start()
        assert wait_until(lambda: stored() > 100, 20)
        recorder.send_signal(signal.SIGKILL)  # mid-stream: what it had received but not stored is not acknowledged
        recorder.wait(10)
        time.sleep(0.5)
        recorder = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        before = published[0]
        assert wait_until(lambda: stored() > before, 20)
        broker.stop()
        time.sleep(0.5)
        broker.start()
        after = published[0]
        assert wait_until(lambda: stored() > after + 50, 30)
        stop.set()
        streamer.join()
        assert wait_until(lambda: stored() == published[0], 30), (stored(), published[0])
        history = store.history("porch", start, start + 10**5, 0.5)
        assert len(history["buckets"]) == published[0], "every seq once, none twice"
    finally:
        stop.set()
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(15) == 0
        sink.close()
        store.close()
        broker.stop()


@pytest.mark.parametrize("args, message", [
    (["--max-size", "lots"], "error: --max-size 'lots': expected a size like 500MB or 2GiB"),
    (["--keep", "-1d"], "error: --keep '-1d': expected an age like 30d"),
    (["--broker", "http://example.org"], "error: --broker: expected mqtt://host[:port]"),
    (["--db", "postgresql://nobody:secret@127.0.0.1:1/none"], "error: --db postgresql://nobody:***@127.0.0.1:1/none:"),
    (["--db", "/proc/self/no/such/dir/h.sqlite"], "error: --db /proc/self/no/such/dir/h.sqlite: cannot open"),
])
def test_bad_options_are_one_error_line(args, message, capsys):
    code, _, err = cli(capsys, "record", *args)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "secret" not in err


def test_a_poisoned_message_is_dropped_not_fatal():
    """Nesting deeper than Python's parser and a malformed top_k are dropped or tolerated, never raised into
    paho's thread (which would stop the recorder)."""
    from audeep_edge.recorder.records import parse

    assert parse("kitchen", "window", b"[" * 100_000, 1.0) is None
    window = parse("kitchen", "window", b'{"label": "Rain", "smoothed_label": "Dog", "top_k": 7}', 1.0)
    assert (window.label, window.confidence) == ("Dog", None)


def test_nesting_near_the_parsers_limit_never_raises():
    """Near Python's recursion limit json.loads may accept what json.dumps refuses (it depends on the stack in use):
    either way parse gives a record whose stored payload reads back, or drops the message."""
    import json

    from audeep_edge.recorder.records import parse

    for depth in range(900, 1001, 5):
        nested = b'{"schema_version": 1, "a": ' + b"[" * depth + b"]" * depth + b"}"
        record = parse("kitchen", "health", nested, 1.0)
        assert record is None or json.loads(record.payload)["schema_version"] == 1
    assert parse("kitchen", "health", b'{"schema_version": 1, "rtf": 0.01}', 1.0).payload == '{"schema_version":1,"rtf":0.01}'


def test_a_type_filter_fills_the_limit_with_events_of_that_type(db_url):
    """Asking for one event type returns up to ``limit`` of them, however many newer events of other types exist."""
    from audeep_edge.recorder.records import Event

    store = open_store(db_url)
    t0 = 1_700_000_000.0
    novel = [Event("den", t0 + i, "novel", i, None, '{"type":"novel"}') for i in range(5)]
    changes = [Event("den", t0 + 100 + i, "label_change", 100 + i, "Rain", '{"type":"label_change"}')
               for i in range(50)]
    store.write([*novel, *changes])
    found = store.events(t0, t0 + 1000, types=("novel",), limit=5)
    assert [e["seq"] for e in found] == [4, 3, 2, 1, 0]
    assert store.events(t0, t0 + 1000, types=("clip",)) == []
