"""Benchmark the MQTT sink: publish_window() -> subscriber latency on loopback, and broker start time.

    .venv/bin/python scripts/bench_mqtt_latency.py [--messages 1000] [--interval-ms 5]

For mosquitto (if installed; default config and with ``set_tcp_nodelay true``) and the embedded amqtt
broker, at QoS 0 and 1, with and without a float16 embedding, it publishes ``--messages`` schema v1 windows
through :class:`MqttSink` to a subscriber in the same process and prints the p50/p99 of (receipt time - time
publish_window() was called), plus the time spent inside publish_window() itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from audeep_edge.mqtt.broker_url import parse_broker_url
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sinks.broker import start_embedded_broker
from audeep_edge.sinks.mqtt import MqttSink


def window(seq: int, embedding: str | None) -> dict:
    payload = {"schema_version": 1, "device_id": "bench", "seq": seq, "audio_time": float(seq),
               "wall_time": time.time(), "label": "Rain", "confidence": 0.91,
               "top_k": [{"label": "Rain", "p": 0.91}, {"label": "Sea waves", "p": 0.05}],
               "smoothed_label": "Rain", "dbfs": -23.4}
    if embedding is not None:
        payload.update(embedding_b64=embedding, embedding_dtype="float16")
    return payload


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(url: str, host: str, port: int, qos: int, messages: int, interval: float, embedding: str | None) -> dict:
    received: dict[int, float] = {}
    done = threading.Event()

    def on_message(client, userdata, message):
        received.setdefault(json.loads(message.payload)["seq"], time.perf_counter())
        if len(received) == messages:
            done.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{qos}-{port}")
    address = parse_broker_url(url)
    if address.username:  # the embedded broker admits only its generated credentials
        sub.username_pw_set(address.username, address.password)
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(host, port)
    sub.loop_start()
    sub.subscribe("audeep/bench/window", qos=qos)
    subscribed.wait(5)
    sink = MqttSink(MqttSettings(url=url, qos=qos), "bench", {"bundle": "bench"})
    assert sink.wait_connected(5)
    sent: dict[int, float] = {}
    call_ms = []
    for seq in range(messages):
        payload = window(seq, embedding)
        sent[seq] = time.perf_counter()
        sink.publish_window(payload)
        call_ms.append(1000 * (time.perf_counter() - sent[seq]))
        time.sleep(interval)
    done.wait(30)
    sink.close()
    sub.disconnect()
    sub.loop_stop()
    latency_ms = [1000 * (received[s] - sent[s]) for s in received]
    return {"received": len(received), "p50": percentile(latency_ms, 50), "p99": percentile(latency_ms, 99),
            "call_p50": percentile(call_ms, 50), "call_p99": percentile(call_ms, 99)}


def start_mosquitto(workdir: Path, nodelay: bool):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        return None, None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = workdir / f"mosquitto-{nodelay}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"set_tcp_nodelay {str(nodelay).lower()}\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--interval-ms", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # amqtt warns about PUBACKs it lost track of (harmless here)
    interval = args.interval_ms / 1000
    embedding = __import__("base64").b64encode(np.zeros(1024, np.float16).tobytes()).decode()

    import_s = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import amqtt.broker; "
                               "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
    starts = []
    for _ in range(5):
        started = time.perf_counter()
        broker = start_embedded_broker(port=0 if starts else None)
        starts.append(1000 * (time.perf_counter() - started))
        broker.stop()
    print(f"embedded broker: amqtt import {1000 * float(import_s.stdout):.0f} ms (fresh process), "
          f"start median {statistics.median(starts):.0f} ms over 5 (first {starts[0]:.0f} ms, includes import)")

    print(f"{args.messages} windows every {args.interval_ms:g} ms, loopback; latency = receipt - publish_window() call")
    print(f"{'broker':<12} {'qos':>3} {'payload':<16} {'recv':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'call p50 ms':>11} {'call p99 ms':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        embedded = start_embedded_broker(port=0)
        targets = [("embedded", embedded.client_url, embedded.host, embedded.port)]
        mosquittos = []
        for nodelay in (False, True):
            proc, port = start_mosquitto(Path(tmp), nodelay)
            if proc is not None:
                mosquittos.append(proc)
                name = "mosq-nodelay" if nodelay else "mosquitto"
                targets.insert(len(mosquittos) - 1, (name, f"mqtt://127.0.0.1:{port}", "127.0.0.1", port))
        try:
            for name, url, host, target_port in targets:
                for qos in (0, 1):
                    for label, emb in (("window", None), ("window+emb f16", embedding)):
                        r = run(url, host, target_port, qos, args.messages, interval, emb)
                        print(f"{name:<12} {qos:>3} {label:<16} {r['received']:>5} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                              f"{r['call_p50']:>11.3f} {r['call_p99']:>11.3f}")
        finally:
            embedded.stop()
            for proc in mosquittos:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
