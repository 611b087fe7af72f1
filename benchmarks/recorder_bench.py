"""Recorder figures for docs/history.md: ingest rate through a real mosquitto, bytes per device-day, query times.

    .venv/bin/python benchmarks/recorder_bench.py --db /tmp/bench.sqlite [--devices 50] [--days 7]
    .venv/bin/python benchmarks/recorder_bench.py --db postgresql://user@host/bench

1. **Ingest**: ``--ingest`` windows from 10 simulated devices (real MQTT sinks, QoS 1) wait in the recorder's
   persistent session on a fresh mosquitto (default settings but ``max_queued_messages 0``); then the recorder
   starts and the time until every window is stored gives windows/s (broker delivery + parsing + batched
   commits + acknowledgements, all on this machine).
2. **Bytes per device-day**: the database's growth for one device streaming one window per second for a day
   (one label of 10, level, novelty score), with 48 events and a health report every 10 s.
3. **Queries**: ``--devices`` devices x ``--days`` days of such windows written through ``Store.write``, then the
   median of 5 runs of: one device's last 24 h (the dashboard's 24 h view: 600 timeline buckets, label shares,
   hourly summary, and its events), one device's 7 days in hourly bars (the 7 d view: hourly counts plus the
   partial first and last hour) and in 600 buckets (every window read, as a zoom below two days does), and
   every device's 7 days in hourly bars (a fleet overview).

The database must be empty (a new file, or a new PostgreSQL database): the benchmark writes ~2 GB per 50 x 7
device-days into it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.recorder import Recorder, open_store
from audeep_edge.recorder.records import Event, Health, Window
from audeep_edge.recorder.store import HOUR
from audeep_edge.sinks.mqtt import MqttSink

LABELS = ["Dog bark", "Rain", "Sea waves", "Baby cry", "Clock tick", "Person sneeze", "Helicopter", "Chainsaw",
          "Rooster", "Crackling fire"]
DAY = 86400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def day_of_windows(device: str, start: float, rng: random.Random) -> list:
    """One device-day at 1 window/s: scenes that last minutes, a level and a novelty score per window."""
    rows, label = [], rng.choice(LABELS)
    for i in range(DAY):
        if rng.random() < 1 / 120:
            label = rng.choice(LABELS)
        rows.append(Window(device, start + i, i, label, label, round(rng.uniform(0.4, 1), 4),
                           round(rng.uniform(-70, -10), 2), round(rng.random(), 4)))
    return rows


def day_of_other(device: str, start: float) -> list:
    events = [Event(device, start + 1800 * i, "label_change", 1800 * i, "Rain",
                    json.dumps({"type": "label_change", "label": "Rain", "previous": "Dog bark"})) for i in range(48)]
    health = [Health(device, start + 10 * i, json.dumps({"rtf": 0.008, "latency_ms_p50": 4.1, "overruns": 0}))
              for i in range(DAY // 10)]
    return events + health


def write(store, rows: list, batch: int = 5000) -> None:
    for i in range(0, len(rows), batch):
        store.write(rows[i:i + batch])


def median_ms(call, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def ingest(location: str, windows: int) -> float:
    """windows/s the recorder stores from a backlog in its session on a real mosquitto."""
    workdir = Path(tempfile.mkdtemp(prefix="recorder-bench-"))
    port = free_port()
    (workdir / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                            "persistence false\nmax_queued_messages 0\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(workdir / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", client_id="recorder-bench", queue_max=windows)
        store = open_store(location)
        recorder = Recorder(settings, store)
        recorder.start()
        assert recorder.wait_connected(10)
        recorder.stop()  # the session stays: what is published now waits for it
        devices = [f"ingest-{k}" for k in range(10)]
        sinks = [MqttSink(MqttSettings(url=settings.url, queue_max=windows, flush_timeout=600), d, {}) for d in devices]
        start = time.time() - windows
        for i in range(windows // len(sinks)):
            for k, sink in enumerate(sinks):
                sink.publish_window({"schema_version": 1, "device_id": devices[k], "seq": i, "wall_time": start + i,
                                     "label": "Rain", "confidence": 0.9, "smoothed_label": "Rain",
                                     "smoothed_confidence": 0.8, "top_k": [{"label": "Rain", "p": 0.9}],
                                     "dbfs": -20.0, "novelty": 0.1})
        for sink in sinks:
            sink.close()
        total = windows // len(sinks) * len(sinks)
        recorder = Recorder(settings, store)
        t = time.perf_counter()
        recorder.start()
        while recorder.stats()["stored"] < total:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t
        recorder.stop()
        store.close()
        return total / elapsed
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def fill(args: argparse.Namespace, end: float) -> None:
    rate = ingest(args.db, args.ingest)
    print(f"ingest: {rate:,.0f} windows/s ({args.ingest} windows from 10 devices via mosquitto)", flush=True)

    store = open_store(args.db)
    rng = random.Random(0)
    before = store.used_bytes()
    write(store, day_of_windows("day-0", end - DAY, rng) + day_of_other("day-0", end - DAY))
    per_day = store.used_bytes() - before
    print(f"bytes per device-day: {per_day / 1e6:.2f} MB ({per_day / DAY:.0f} B per window incl. events, "
          f"health, indexes)", flush=True)

    t = time.perf_counter()
    for device in range(args.devices):
        for day in range(args.days):
            write(store, day_of_windows(f"fleet-{device:02d}", end - (args.days - day) * DAY, rng))
    elapsed = time.perf_counter() - t
    windows = args.devices * args.days * DAY
    print(f"filled {args.devices} devices x {args.days} days = {windows:,} windows in {elapsed:.0f} s "
          f"({windows / elapsed:,.0f} windows/s through Store.write); database {store.used_bytes() / 1e9:.2f} GB",
          flush=True)
    store.close()


def queries(args: argparse.Namespace, end: float) -> None:
    store = open_store(args.db)
    day_ms = median_ms(lambda: (store.history("fleet-00", end - DAY, end, DAY / 600),
                                store.events(end - DAY, end, device_id="fleet-00")))
    week = (end - 7 * DAY + 1800, end + 1800)  # as the dashboard asks: ending now, not on an hour
    week_ms = median_ms(lambda: store.history("fleet-00", *week, HOUR))
    scan_ms = median_ms(lambda: store.history("fleet-00", *week, 7 * DAY / 600))
    fleet_ms = median_ms(lambda: [store.history(f"fleet-{d:02d}", *week, HOUR) for d in range(args.devices)])
    print(f"query, one device, 24 h (600 buckets + shares + hourly + events): {day_ms:.0f} ms")
    print(f"query, one device, 7 days, hourly bars (the dashboard's 7 d view): {week_ms:.0f} ms")
    print(f"query, one device, 7 days, 600 buckets (every window read): {scan_ms:.0f} ms")
    print(f"query, {args.devices} devices, 7 days each, hourly: {fleet_ms:.0f} ms")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="an empty database: a new file path or postgresql://...")
    parser.add_argument("--ingest", type=int, default=50_000, help="windows for the ingest figure")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--queries-only", action="store_true", help="only time the queries, on a database a "
                        "previous run filled within the same hour (same --devices and --days)")
    args = parser.parse_args()
    end = time.time() // 3600 * 3600
    if not args.queries_only:
        fill(args, end)
    queries(args, end)


if __name__ == "__main__":
    main()
