"""`audeep-edge listen` against real brokers: mosquitto gets every window in order with the documented schema;
SIGINT/SIGTERM flush and leave `offline`; a broker restart mid-stream loses nothing; refused credentials; the
zero-setup embedded broker."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Mosquitto, free_port
from mqtt_testing import Collector, wait_until
from stream_testing import CLI, RAIN, TINY, assert_one_error_line, read_jsonl, run_cli

WINDOW_KEYS = {"schema_version", "device_id", "seq", "audio_time", "wall_time", "label", "confidence", "top_k",
               "smoothed_label", "smoothed_confidence", "dbfs", "embedding_b64", "embedding_dtype"}
INFO_KEYS = {"schema_version", "device_id", "bundle", "precision", "labels", "enrolled_labels", "embedding_size",
             "window_seconds", "hop_seconds", "novelty_threshold"}
HEALTH_KEYS = {"schema_version", "device_id", "wall_time", "uptime_s", "rtf", "latency_ms_p50", "latency_ms_p99",
               "overruns", "queue_depth", "dropped", "buffered"}


def test_mosquitto_receives_every_window_of_a_file_in_order_with_the_documented_schema(mosquitto, tmp_path):
    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/dev1/#"])
    done = run_cli("listen", "--file", RAIN, "--bundle", TINY, "--broker", mosquitto.url, "--device-id", "dev1",
                   "--embeddings", "float16", "--jsonl", tmp_path / "out.jsonl", "--top-k", "2")
    assert done.returncode == 0, done.stderr
    local = read_jsonl((tmp_path / "out.jsonl").read_text())
    assert collector.wait_for(lambda c: len(c.on("audeep/dev1/window")) == len(local["window"]) == 11)
    windows = collector.json("audeep/dev1/window")
    assert windows == local["window"]  # the same payloads, in order
    assert [w["seq"] for w in windows] == list(range(11))
    for w in windows:
        assert set(w) == WINDOW_KEYS and w["device_id"] == "dev1" and w["embedding_dtype"] == "float16"
        assert len(w["top_k"]) == 2 and set(w["top_k"][0]) == {"label", "p"}
    (info, _), = collector.on("audeep/dev1/info")
    assert set(json.loads(info)) == INFO_KEYS and json.loads(info)["hop_seconds"] == 0.4
    assert [p for p, _ in collector.on("audeep/dev1/status")] == [b"online", b"offline"]
    assert set(collector.json("audeep/dev1/health")[-1]) == HEALTH_KEYS
    collector.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_flushes_publishes_offline_and_exits_0(mosquitto, sig):
    collector = Collector(mosquitto.host, mosquitto.port, ["audeep/sig/#"])
    child = subprocess.Popen([CLI, "listen", "--file", RAIN, "--realtime", "--bundle", TINY, "--broker", mosquitto.url,
                              "--device-id", "sig"], stderr=subprocess.PIPE, text=True)
    try:
        assert collector.wait_for(lambda c: len(c.on("audeep/sig/window")) >= 2, timeout=30)
        child.send_signal(sig)
        _, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0 and "Traceback" not in stderr, stderr
    assert collector.wait_for(lambda c: c.on("audeep/sig/status")[-1:] == [(b"offline", False)])
    seqs = [w["seq"] for w in collector.json("audeep/sig/window")]
    assert seqs == list(range(len(seqs))) and len(seqs) < 11  # stopped early, nothing lost before the stop
    collector.close()


def test_a_broker_restart_mid_stream_loses_no_window(tmp_path):
    """The broker is down for 2 s of a real-time stream; every seq still arrives, in order (repeats allowed)."""
    broker = Mosquitto(tmp_path, extra_conf=f"persistence true\npersistence_location {tmp_path}/\nuser root\n")
    broker.start()
    collector = Collector(broker.host, broker.port, ["audeep/restart/window"], client_id="sub-restart",
                          persistent=True)  # its session survives the restart: nothing is missed while it rejoins
    child = subprocess.Popen([CLI, "listen", "--file", RAIN, "--realtime", "--bundle", TINY, "--broker", broker.url,
                              "--device-id", "restart"], stderr=subprocess.PIPE, text=True)
    try:
        assert collector.wait_for(lambda c: len(c.on("audeep/restart/window")) >= 1, timeout=30)
        broker.stop()
        time.sleep(2.0)
        broker.start()
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        seqs = lambda: [w["seq"] for w in collector.json("audeep/restart/window")]  # noqa: E731
        assert collector.wait_for(lambda c: set(seqs()) >= set(range(11)), timeout=15), seqs()
        assert list(dict.fromkeys(seqs())) == list(range(11)) and "lost the broker" in stderr
    finally:
        child.kill()
        collector.close()
        broker.stop()


def test_a_broker_refusing_the_credentials_is_one_error_line_without_the_password(tmp_path):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "edge", "s3cret-pw"], check=True)
    broker = Mosquitto(tmp_path, extra_conf=f"allow_anonymous false\npassword_file {passwd}\nuser root\n")
    broker.start()
    try:
        wrong = tmp_path / "wrong"
        wrong.write_text("not-the-pw\n")
        done = run_cli("listen", "--file", RAIN, "--bundle", TINY, "--broker", broker.url, "--username", "edge",
                       "--password-file", wrong)
    finally:
        broker.stop()
    line = assert_one_error_line(done, "refused the connection", "--password-file")
    assert "not-the-pw" not in done.stderr + done.stdout, line


def test_without_broker_an_embedded_one_starts_and_says_where(tmp_path):
    child = subprocess.Popen([CLI, "listen", "--file", RAIN, "--realtime", "--bundle", TINY, "--device-id", "zero",
                              "--max-windows", "4"], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("embedded MQTT broker on" in line for line in lines):
            lines.append(child.stderr.readline())
            assert lines[-1], "".join(lines)
        host, port = re.search(r"mqtt://([\d.]+):(\d+)", lines[-1]).groups()
        user, password_file = re.search(r'-u (\S+) -P "\$\(cat (\S+)\)"', lines[-1]).groups()
        collector = Collector(host, int(port), ["audeep/zero/#"], username=user,
                              password=Path(password_file).read_text().strip())
        assert wait_until(lambda: child.poll() is not None, timeout=30)
    finally:
        child.kill()
        rest = child.stderr.read()
    assert child.returncode == 0, "".join(lines) + rest
    assert json.loads(collector.on("audeep/zero/info")[0][0])["bundle"] == "tiny"
    seqs = [w["seq"] for w in collector.json("audeep/zero/window")]
    assert seqs and seqs == list(range(seqs[0], 4))  # every window after the subscription, in order
    collector.close()


def test_a_broker_gone_for_good_is_an_error_naming_what_was_kept_and_the_next_run_delivers_it(tmp_path, state_dir):
    """The broker stops after the first window and does not come back before the file ends: `listen` must not
    exit 0 over undelivered windows. It says how many and where they were kept (the default spool), and the next
    run sends them first, so a persistent subscriber gets every window of the first run in order."""
    broker = Mosquitto(tmp_path, extra_conf=f"persistence true\npersistence_location {tmp_path}/\nuser root\n")
    broker.start()
    collector = Collector(broker.host, broker.port, ["audeep/tail/window"], client_id="sub-tail", persistent=True)
    child = subprocess.Popen([CLI, "listen", "--file", RAIN, "--realtime", "--bundle", TINY, "--broker", broker.url,
                              "--device-id", "tail"], stderr=subprocess.PIPE, text=True)
    try:
        assert collector.wait_for(lambda c: len(c.on("audeep/tail/window")) >= 1, timeout=30)
        broker.stop()
        _, stderr = child.communicate(timeout=60)
        done = subprocess.CompletedProcess(child.args, child.returncode, "", stderr)
        spool = state_dir / "audeep-edge" / "spool" / "audeep_tail.jsonl"
        assert_one_error_line(done, "messages could not be delivered", f"saved to {spool}")
        assert spool.is_file()

        broker.start()
        again = run_cli("listen", "--file", RAIN, "--bundle", TINY, "--broker", broker.url, "--device-id", "tail",
                        "--max-windows", "1")
        assert again.returncode == 0, again.stderr
        seqs = lambda: [w["seq"] for w in collector.json("audeep/tail/window")]  # noqa: E731
        assert collector.wait_for(lambda c: len(set(seqs())) == 11 and seqs().count(0) >= 2, timeout=15), seqs()
        assert list(dict.fromkeys(seqs()))[:11] == list(range(11))  # all of the first run, in order ...
        assert seqs()[-1] == 0 and seqs().index(10) < len(seqs()) - 1  # ... before the second run's window
        assert not spool.exists()
    finally:
        child.kill()
        collector.close()
        broker.stop()


def test_an_unreachable_broker_with_a_file_is_one_error_line():
    done = run_cli("listen", "--file", RAIN, "--bundle", TINY, "--broker", f"mqtt://127.0.0.1:{free_port()}")
    assert_one_error_line(done, "cannot reach the broker", "Connection refused")
