"""The dashboard against hostile MQTT traffic: poisoned retained messages, 1 MB payloads, 10,000 device ids.

A real mosquitto; the dashboard (``DashboardServer``, live view only) in its own process, its RSS sampled every
50 ms; headless Chromium on the page. In order:

1. retained poison before the dashboard starts (unless ``--no-poison``): 100,000 nested brackets, a 400-digit
   ``confidence``; then a probe device publishes a window: seconds until it is on the page;
2. ``--big`` windows of 1 MB (a 1 MB label) from one device;
3. ``--ids`` device ids, one window each;
4. the probe again.

Reports peak RSS, ``/api/state`` size and device count after each phase, the page's worst ``evaluate`` round
trip during the id flood, and the probe latencies. ``--tree DIR`` runs the dashboard from another source tree
(e.g. ``git archive HEAD audeep_edge | tar -x -C /tmp/before``) for a before/after comparison.

    .venv/bin/python benchmarks/dashboard_hostile_bench.py
    .venv/bin/python benchmarks/dashboard_hostile_bench.py --tree /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Mosquitto  # noqa: E402 (the same real-broker launcher the tests use)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVE = ("import sys, threading\n"
         "from audeep_edge.dashboard import DashboardServer\n"
         "from audeep_edge.mqtt.settings import MqttSettings\n"
         "server = DashboardServer(MqttSettings(url=sys.argv[1]), port=0)\n"
         "print(server.start(), flush=True)\n"
         "threading.Event().wait()\n")


def window(device: str, seq: int, label: str = "Rain") -> bytes:
    return json.dumps({"schema_version": 1, "device_id": device, "seq": seq, "audio_time": seq + 5.0,
                       "wall_time": time.time(), "label": label, "confidence": 0.9, "smoothed_label": label,
                       "top_k": [{"label": label, "p": 0.9}], "dbfs": -20.0}).encode()


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return


def state(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url + "api/state", timeout=60) as response:
        body = response.read()
    return len(body), json.loads(body)


def seconds_until(condition, timeout: float = 60.0) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return round(time.monotonic() - start, 2)
        time.sleep(0.05)
    return None


def publish_all(client: mqtt.Client, messages) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)


def run(args: argparse.Namespace) -> dict:
    report: dict = {"tree": str(args.tree or ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.connect(broker.host, broker.port)
        client.loop_start()
        deep = b'{"schema_version": 1, "seq": 1, "label": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        overflow = b'{"schema_version": 1, "seq": 1, "label": "Rain", "confidence": 1' + b"0" * 400 + b"}"
        for topic, payload in (("audeep/poison1/window", deep), ("audeep/poison2/window", overflow)):
            if args.poison:
                client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

        env = {**os.environ, "PYTHONPATH": str(args.tree)} if args.tree else dict(os.environ)
        server = subprocess.Popen([sys.executable, "-c", SERVE, broker.url], stdout=subprocess.PIPE, text=True,
                                  env=env, cwd=args.tree or ROOT)
        sampler = RssSampler(server.pid)
        sampler.start()
        try:
            url = server.stdout.readline().strip()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(url)
                time.sleep(1.0)  # the dashboard has subscribed and got the retained poison

                def probe(seq: int, label: str) -> dict:
                    client.publish("audeep/probe/window", window("probe", seq, label), qos=1).wait_for_publish(10)
                    shown = page.locator('.device-card[data-device="probe"] .label')
                    on_page = seconds_until(lambda: shown.count() > 0 and shown.first.text_content() == label, 30)
                    return {"on_page_s": on_page}

                report["after_poison"] = {**probe(0, "Dog"), "rss_mb": round(sampler.peak / 2**20, 1)}

                big_label = "x" * (1 << 20)
                publish_all(client, [("audeep/big/window", window("big", i, big_label)) for i in range(args.big)])
                time.sleep(2.0)
                size, snapshot = state(url)
                report["after_big"] = {"peak_rss_mb": round(sampler.peak / 2**20, 1), "api_state_mb":
                                       round(size / 2**20, 2), "devices": len(snapshot["devices"])}

                worst_rtt = [0.0]
                done = threading.Event()

                def flood() -> None:
                    publish_all(client, [(f"audeep/id{i:05d}/window", window(f"id{i:05d}", 0))
                                         for i in range(args.ids)])
                    done.set()

                threading.Thread(target=flood, daemon=True).start()
                while not done.is_set():
                    t0 = time.monotonic()
                    page.evaluate("1")
                    worst_rtt[0] = max(worst_rtt[0], time.monotonic() - t0)
                    time.sleep(0.1)
                time.sleep(2.0)
                t0 = time.monotonic()
                page.evaluate("1")
                worst_rtt[0] = max(worst_rtt[0], time.monotonic() - t0)
                size, snapshot = state(url)
                report["after_ids"] = {"peak_rss_mb": round(sampler.peak / 2**20, 1), "api_state_mb":
                                       round(size / 2**20, 2), "devices": len(snapshot["devices"]),
                                       "bad_messages": snapshot["stats"]["bad_messages"],
                                       "page_evaluate_worst_s": round(worst_rtt[0], 2)}
                report["probe_after_flood"] = probe(1, "Rain")
                browser.close()
        finally:
            sampler.stop.set()
            server.terminate()
            server.wait(timeout=10)
            client.disconnect()
            client.loop_stop()
            broker.stop()
    report["peak_rss_mb"] = round(sampler.peak / 2**20, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=int, default=300, help="1 MB windows to publish")
    parser.add_argument("--ids", type=int, default=10_000, help="device ids to publish one window each from")
    parser.add_argument("--tree", type=Path, default=None, help="source tree to run the dashboard from")
    parser.add_argument("--no-poison", dest="poison", action="store_false",
                        help="skip phase 1 (a dashboard that dies of it shows nothing of the others)")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
