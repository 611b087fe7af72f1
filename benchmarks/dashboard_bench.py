"""How much MQTT traffic the dashboard sustains with a real broker and a real browser watching.

A simulated fleet (paho clients with last wills, schema v1 payloads with 1024-d float16 embeddings)
publishes to a real mosquitto; ``audeep-edge dashboard`` runs as its own process; headless Chromium
shows the page. For each publishing interval the script reports messages published / received by the
dashboard / applied by the page per second, the dashboard's CPU and RSS, the page's responsiveness
(``page.evaluate`` round trip, animation-frame gaps, long tasks) and the publish-to-screen latency of
a probe device. The nominal case is the issue's: 20 devices publishing every 0.5 s.

    .venv/bin/python benchmarks/dashboard_bench.py                       # nominal + stress phases
    .venv/bin/python benchmarks/dashboard_bench.py --screenshot docs/dashboard.png
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Mosquitto  # noqa: E402 (the same real-broker launcher the tests use)

ESC10 = ["Chainsaw", "Clock tick", "Crackling fire", "Crying baby", "Dog", "Helicopter", "Rain", "Rooster",
         "Sea waves", "Sneezing"]
ROOMS = ["kitchen", "garden", "hallway", "garage", "porch", "attic", "cellar", "office", "nursery", "workshop",
         "barn", "shed", "lobby", "studio", "library", "gym", "pantry", "terrace", "loft", "lab"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EMBEDDING_SIZE = 1024
FRAME_PROBE_JS = """() => {
  window.__bench = {gaps: [], longTasks: 0, longTaskMs: 0};   // reset per phase
  if (window.__benchInstalled) return;
  window.__benchInstalled = true;
  let last = performance.now();
  const tick = (t) => { window.__bench.gaps.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((list) => { for (const e of list.getEntries()) {
    window.__bench.longTasks++; window.__bench.longTaskMs += e.duration; } }).observe({type: "longtask"});
}"""


class SimulatedDevice:
    """One device: a scene that changes now and then, top-3 probabilities, level, embeddings, health."""

    def __init__(self, broker: Mosquitto, device_id: str, rng: np.random.Generator, pool: dict) -> None:
        self.id, self.rng, self.pool = device_id, rng, pool
        self.seq, self.scene, self.dbfs, self.started = 0, rng.choice(ESC10), -35.0, time.time()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{device_id}")
        self.client.will_set(f"audeep/{device_id}/status", "offline", qos=1, retain=True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.publish(f"audeep/{device_id}/status", "online", qos=1, retain=True)
        self.client.publish(f"audeep/{device_id}/info", json.dumps({
            "schema_version": 1, "device_id": device_id, "bundle": "esc10-t-rae-int8", "precision": "int8",
            "labels": ESC10, "embedding_size": EMBEDDING_SIZE, "window_seconds": 5.0, "hop_seconds": 0.5}),
            qos=1, retain=True)

    def publish_window(self, scene_change_p: float = 0.05) -> None:
        if self.rng.random() < scene_change_p:
            previous, self.scene = self.scene, self.rng.choice(ESC10)
            if self.scene != previous:
                self._send("event", {"type": "label_change", "seq": self.seq, "audio_time": self.seq * 0.5,
                                     "label": self.scene, "previous": previous})
        p = float(np.clip(self.rng.normal(0.8, 0.1), 0.35, 0.99))
        others = self.rng.choice([x for x in ESC10 if x != self.scene], size=2, replace=False)
        self.dbfs = float(np.clip(self.dbfs + self.rng.normal(0, 2), -70, -5))
        self._send("window", {
            "seq": self.seq, "audio_time": self.seq * 0.5, "label": self.scene, "confidence": round(p, 3),
            "smoothed_label": self.scene, "dbfs": round(self.dbfs, 1), "novelty": round(float(self.rng.random()), 3),
            "top_k": [{"label": self.scene, "p": round(p, 3)}, {"label": others[0], "p": round((1 - p) * 0.7, 3)},
                      {"label": others[1], "p": round((1 - p) * 0.2, 3)}],
            "embedding_b64": self.pool[self.scene][self.seq % len(self.pool[self.scene])], "embedding_dtype": "float16"})
        self.seq += 1

    def publish_health(self) -> None:
        self._send("health", {"uptime_s": round(time.time() - self.started, 1),
                              "rtf": round(float(self.rng.uniform(0.08, 0.2)), 3),
                              "latency_ms_p50": round(float(self.rng.uniform(30, 60))),
                              "latency_ms_p99": round(float(self.rng.uniform(70, 120))),
                              "overruns": 0, "queue_depth": 0, "dropped": 0, "buffered": 1})

    def _send(self, kind: str, body: dict) -> None:
        payload = {"schema_version": 1, "device_id": self.id, "wall_time": time.time(), **body}
        self.client.publish(f"audeep/{self.id}/{kind}", json.dumps(payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def embedding_pool(rng: np.random.Generator, per_label: int = 32) -> dict[str, list[str]]:
    """Pre-encoded float16 embeddings clustered by label, so publishing costs little CPU."""
    pool = {}
    for label in ESC10:
        centre = rng.normal(size=EMBEDDING_SIZE) * 2
        vectors = centre + rng.normal(size=(per_label, EMBEDDING_SIZE))
        pool[label] = [base64.b64encode(v.astype("<f2").tobytes()).decode() for v in vectors]
    return pool


class Publisher(threading.Thread):
    """Publishes one window per device every ``interval`` seconds and health every 5 s; counts windows."""

    def __init__(self, devices: list[SimulatedDevice], interval: float) -> None:
        super().__init__(daemon=True)
        self.devices, self.interval, self.windows = devices, interval, 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        tick, next_health = time.monotonic(), time.monotonic()
        while not self.stop_event.is_set():
            for device in self.devices:
                device.publish_window()
                self.windows += 1
            if time.monotonic() >= next_health:
                for device in self.devices:
                    device.publish_health()
                next_health += 5.0
            tick += self.interval
            time.sleep(max(0.0, tick - time.monotonic()))


def start_dashboard(broker_url: str, history: float) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-c", "from audeep_edge.cli import main; main()", "-q", "dashboard",
               "--broker", broker_url, "--port", "0", "--history", str(history)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("dashboard: "):
        raise SystemExit(f"dashboard did not start: {line!r}")
    return proc, line.split()[1]


def dashboard_messages(url: str) -> int:
    with urllib.request.urlopen(url.rstrip("/") + "/api/state", timeout=10) as response:
        return json.load(response)["stats"]["messages"]


def probe_latency(page, probe: SimulatedDevice, n: int) -> list[float]:
    """Seconds from publishing a new scene on the probe device to the page showing it (inf: not in 10 s)."""
    latencies = []
    label_el = f'.device-card[data-device="{probe.id}"] .label'
    for i in range(n):
        label = ESC10[i % 2]
        probe.scene = label
        start = time.perf_counter()
        probe.publish_window(scene_change_p=0.0)
        try:
            page.wait_for_function(f"() => document.querySelector({json.dumps(label_el)})?.textContent === "
                                   f"{json.dumps(label)}", polling="raf", timeout=10_000)
            latencies.append(time.perf_counter() - start)
        except PlaywrightTimeout:
            latencies.append(float("inf"))
        time.sleep(0.2)
    return latencies


def run_phase(page, dashboard: psutil.Process, url: str, devices, probe, interval: float, seconds: float,
              screenshot: Path | None = None) -> dict:
    page.evaluate(FRAME_PROBE_JS)
    publisher = Publisher(devices, interval)
    received0, applied0 = dashboard_messages(url), page.evaluate("window.dashboardCounters.windows")
    render_ms0 = page.evaluate("window.dashboardCounters.renderMs")
    cpu0, t0 = sum(dashboard.cpu_times()[:2]), time.monotonic()
    publisher.start()
    rtts, rss_peak = [], 0
    while time.monotonic() - t0 < seconds:
        start = time.perf_counter()
        page.evaluate("() => 1")
        rtts.append((time.perf_counter() - start) * 1000)
        rss_peak = max(rss_peak, dashboard.memory_info().rss)
        time.sleep(0.25)
    latencies = probe_latency(page, probe, 6)
    if screenshot:
        page.click('.device-card[data-device="kitchen"]')
        page.wait_for_timeout(2500)
        page.screenshot(path=str(screenshot), full_page=True)
    publisher.stop_event.set()
    publisher.join()
    time.sleep(1.0)  # let the last deltas arrive
    elapsed = time.monotonic() - t0
    frames = page.evaluate("window.__bench")
    gaps = sorted(frames["gaps"][1:]) or [0.0]
    received = dashboard_messages(url) - received0
    applied = page.evaluate("window.dashboardCounters.windows") - applied0
    render_ms = page.evaluate("window.dashboardCounters.renderMs") - render_ms0
    return {
        "devices": len(devices), "interval_s": interval, "load_average_1min": round(os.getloadavg()[0], 1),
        "published_windows_per_s": round(publisher.windows / elapsed, 1),
        "dashboard_messages_per_s": round(received / elapsed, 1),
        "page_windows_per_s": round(applied / elapsed, 1),
        "page_windows_applied_ratio": round((applied - len(latencies)) / max(1, publisher.windows), 4),
        "dashboard_cpu_percent": round(100 * (sum(dashboard.cpu_times()[:2]) - cpu0) / elapsed, 1),
        "dashboard_rss_mib_peak": round(rss_peak / 2**20, 1),
        "evaluate_rtt_ms_median": round(statistics.median(rtts), 1),
        "evaluate_rtt_ms_p95": round(float(np.percentile(rtts, 95)), 1),
        "frame_gap_ms_p99": round(float(np.percentile(gaps, 99)), 1),
        "page_render_ms_per_s": round(render_ms / elapsed, 1),
        "long_tasks": frames["longTasks"], "long_task_ms_per_s": round(frames["longTaskMs"] / elapsed, 1),
        "publish_to_screen_ms_median": _ms(statistics.median(latencies)),
        "publish_to_screen_ms_max": _ms(max(latencies)),
    }


def _ms(seconds: float) -> int | None:
    return round(1000 * seconds) if np.isfinite(seconds) else None  # None: the page fell > 10 s behind


def browser_rss_mib() -> float:
    """RSS summed over this script's Chromium processes (overcounts pages they share)."""
    procs = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name()]
    return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="nominal publishing interval per device (s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the nominal phase")
    parser.add_argument("--stress-intervals", type=float, nargs="*", default=[0.1, 0.05, 0.02],
                        help="further, shorter intervals to find the ceiling")
    parser.add_argument("--stress-seconds", type=float, default=20.0)
    parser.add_argument("--screenshot", type=Path, help="save a full-page screenshot after the nominal phase")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = ROOT / "test-artifacts" / "dashboard-bench"
    work.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(work)
    broker.start()
    rng = np.random.default_rng(7)
    pool = embedding_pool(rng)
    devices = [SimulatedDevice(broker, ROOMS[i % len(ROOMS)] + ("" if i < len(ROOMS) else f"-{i}"), rng, pool)
               for i in range(args.devices)]
    probe = SimulatedDevice(broker, "zz-probe", rng, pool)
    proc, url = start_dashboard(broker.url, history=max(60.0, args.seconds))
    dashboard = psutil.Process(proc.pid)
    results = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.wait_for_function(f"document.querySelectorAll('.device-card').length === {args.devices + 1}")
            for interval, seconds in [(args.interval, args.seconds)] + [(i, args.stress_seconds) for i in args.stress_intervals]:
                shot = args.screenshot if not results else None
                result = run_phase(page, dashboard, url, devices, probe, interval, seconds, shot)
                result["browser_rss_mib"] = browser_rss_mib()
                results.append(result)
                print(json.dumps(result), flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for device in devices + [probe]:
            device.close()
        broker.stop()

    print(f"\n{'devices':>7} {'interval':>8} {'pub/s':>7} {'dash/s':>7} {'page/s':>7} {'applied':>7} "
          f"{'CPU%':>5} {'RSS MiB':>7} {'rtt p95':>7} {'frame p99':>9} {'longtask/s':>11} {'pub→screen':>10}")
    for r in results:
        print(f"{r['devices']:>7} {r['interval_s']:>8} {r['published_windows_per_s']:>7} "
              f"{r['dashboard_messages_per_s']:>7} {r['page_windows_per_s']:>7} {r['page_windows_applied_ratio']:>7} "
              f"{r['dashboard_cpu_percent']:>5} {r['dashboard_rss_mib_peak']:>7} {r['evaluate_rtt_ms_p95']:>7} "
              f"{r['frame_gap_ms_p99']:>9} {r['long_task_ms_per_s']:>11} {str(r['publish_to_screen_ms_median']):>7} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
