"""What a broker outage costs a finite real-time stream: windows that reach a persistent QoS 1 subscriber.

A real mosquitto (persistence on) and a subscriber with a persistent session; ``audeep-edge listen --file
--realtime --max-windows N`` streams the bundled demo audio (looped) through the default bundle (1 s hop).
After ``--stop-after`` windows the broker stops for ``--outage`` seconds, then comes back; the stream ends
by itself. Reports how many distinct windows the subscriber got, how soon after the broker's return delivery
resumed, and listen's exit status and error line. ``--reconnect-max`` patches the back-off cap of the MQTT
client factory in the listen process to compare with another value (30 s was the cap before issue 17).

    .venv/bin/python benchmarks/outage_bench.py                          # 60 windows, 30 s outage
    .venv/bin/python benchmarks/outage_bench.py --reconnect-max 30       # the old back-off cap
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Mosquitto  # noqa: E402 (the same real-broker launcher the tests use)
from mqtt_testing import Collector, wait_until  # noqa: E402

DEMO = ROOT / "audeep_edge" / "assets" / "demo-scenes.ogg"
LISTEN = ("import sys\n"
          "cap = float(sys.argv.pop(1))\n"
          "if cap:\n"
          "    import audeep_edge.mqtt.client as client\n"
          "    client.RECONNECT_MAX_S = cap\n"
          "from audeep_edge.cli import main\n"
          "main()\n")


def looped_demo(path: Path, seconds: float) -> Path:
    x, fs = soundfile.read(str(DEMO), always_2d=True)
    reps = int(np.ceil(seconds * fs / x.shape[0]))
    soundfile.write(str(path), np.tile(x, (reps, 1))[: int(seconds * fs)], fs)
    return path


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Mosquitto(tmp, extra_conf=f"persistence true\npersistence_location {tmp}/\nuser root\n")
        broker.start()
        subscriber = Collector(broker.host, broker.port, ["audeep/outage/window"], client_id="outage-sub",
                               persistent=True)
        audio = looped_demo(tmp / "demo.wav", args.windows + 10)
        env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"), "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-c", LISTEN, str(args.reconnect_max or 0), "listen", "--file",
                                  str(audio), "--realtime", "--max-windows", str(args.windows), "--broker",
                                  broker.url, "--device-id", "outage"], stderr=subprocess.PIPE, text=True, env=env)
        seqs = lambda: [json.loads(p)["seq"] for p, _ in subscriber.on("audeep/outage/window")]  # noqa: E731
        assert wait_until(lambda: len(seqs()) >= args.stop_after, timeout=120), "no windows arrived"
        broker.stop()
        stopped = time.monotonic()
        time.sleep(args.outage)
        before_return = len(seqs())
        broker.start()
        returned = time.monotonic()
        wait_until(lambda: len(seqs()) > before_return or child.poll() is not None, timeout=120)
        resumed = time.monotonic() if len(seqs()) > before_return else None
        _, stderr = child.communicate(timeout=300)
        ended = time.monotonic()
        wait_until(lambda: len(set(seqs())) >= args.windows, timeout=10)
        received = sorted(set(seqs()))
        subscriber.close()
        broker.stop()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    return {
        "windows": args.windows, "outage_s": args.outage, "reconnect_max_s": args.reconnect_max or "default",
        "broker_stopped_at_s": round(stopped - started, 1), "broker_back_at_s": round(returned - started, 1),
        "stream_ended_at_s": round(ended - started, 1),
        "delivery_resumed_after_return_s": None if resumed is None else round(resumed - returned, 1),
        "windows_received": len(received), "in_order_from_0": received == list(range(len(received))),
        "exit_status": child.returncode, "error": errors[0] if errors else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=60, help="windows in the stream (1 s hop)")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the broker is away")
    parser.add_argument("--stop-after", type=int, default=10, help="windows received before the broker stops")
    parser.add_argument("--reconnect-max", type=float, default=None, help="patch the sink's back-off cap (s)")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
