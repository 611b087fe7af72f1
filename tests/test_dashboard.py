"""Dashboard end to end: real mosquitto, real paho publishers with last wills, real headless Chromium."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from audeep_edge.dashboard import DashboardServer
from audeep_edge.errors import ConfigError
from audeep_edge.mqtt.settings import MqttSettings

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LABELS = ["Rain", "Dog", "Sea waves", "Crackling fire"]
UPDATE_DEADLINE_MS = 2000  # the promise: a published label is on screen within 2 s


class FakeDevice:
    """A paho client that publishes schema v1 like a device, with a retained ``offline`` last will."""

    def __init__(self, broker, device_id: str, embedding_size: int = 0, enrolled: tuple[str, ...] = ()) -> None:
        self.id = device_id
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{device_id}")
        self.info = {"schema_version": 1, "device_id": device_id, "bundle": "esc10-test", "precision": "int8",
                     "labels": [*LABELS, *enrolled], "enrolled_labels": list(enrolled),
                     "embedding_size": embedding_size, "window_seconds": 5.0, "hop_seconds": 1.0}
        self.client.will_set(f"audeep/{device_id}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._announce
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.publish("status", "online", retain=True)  # waits until the connection is up

    def _announce(self, client, userdata, flags, reason_code, properties) -> None:
        # Like a real device: (re)announce the retained status and info on every connection.
        self.publish("status", "online", retain=True, wait=False)
        self.publish("info", self.info, retain=True, wait=False)

    def publish(self, kind: str, payload, retain: bool = False, wait: bool = True) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        info = self.client.publish(f"audeep/{self.id}/{kind}", data, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(5)

    def window(self, label: str, confidence: float = 0.9, **extra) -> None:
        other = next(x for x in LABELS if x != label)
        self.publish("window", {"schema_version": 1, "device_id": self.id, "seq": self.seq,
                                "audio_time": float(self.seq), "wall_time": 1.7e9 + self.seq, "label": label,
                                "confidence": confidence, "smoothed_label": label, "dbfs": -23.4,
                                "top_k": [{"label": label, "p": confidence}, {"label": other, "p": 1 - confidence}],
                                **extra})
        self.seq += 1

    def novel(self, state: str, duration: float, peak: float) -> None:
        self.publish("event", {"schema_version": 1, "device_id": self.id, "wall_time": 1.7e9 + self.seq,
                               "type": "novel", "seq": self.seq - 1, "state": state, "audio_time": float(self.seq),
                               "start_time": self.seq - duration, "duration": duration, "peak": peak})

    def kill_connection(self) -> None:
        """Drop the TCP connection without DISCONNECT, as a crash or power cut would."""
        self.client.loop_stop()
        sock = self.client.socket()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never download a browser)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def dashboard(mosquitto):
    server = DashboardServer(MqttSettings(url=mosquitto.url), port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def card(page, device_id: str):
    return page.locator(f'.device-card[data-device="{device_id}"]')


def test_fleet_shows_devices_live_and_last_will_turns_one_offline(mosquitto, dashboard, page):
    devices = [FakeDevice(mosquitto, name) for name in ("kitchen", "garden", "hallway")]
    off_site = []
    page.on("request", lambda r: None if r.url.startswith(f"http://127.0.0.1:{dashboard.port}/") else off_site.append(r.url))
    page.goto(dashboard.url)

    expect(page.locator(".device-card")).to_have_count(3)
    expect(page.locator("#fleet-summary")).to_have_text("3 devices · 3 online")
    expect(page.locator("#broker")).to_have_text("broker: connected")
    for device, label in zip(devices, ("Rain", "Dog", "Sea waves")):
        device.window(label, 0.87)
        expect(card(page, device.id).locator(".label")).to_have_text(label, timeout=UPDATE_DEADLINE_MS)
        expect(card(page, device.id).locator(".confidence")).to_have_text("87 %", timeout=UPDATE_DEADLINE_MS)
    devices[0].window("Crackling fire", 0.6)
    expect(card(page, "kitchen").locator(".label")).to_have_text("Crackling fire", timeout=UPDATE_DEADLINE_MS)
    expect(card(page, "kitchen").locator(".dbfs")).to_have_text("-23.4 dBFS")

    devices[1].kill_connection()
    expect(card(page, "garden").locator(".status")).to_have_text("offline")
    expect(card(page, "garden")).to_contain_class("offline")
    expect(card(page, "kitchen").locator(".status")).to_have_text("online")
    expect(page.locator("#fleet-summary")).to_have_text("3 devices · 2 online")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert off_site == [], "the page must load nothing from outside the dashboard (works offline)"
    for device in (devices[0], devices[2]):
        device.close()


def test_detail_panel_shows_health_events_and_embedding_map(mosquitto, dashboard, page):
    device = FakeDevice(mosquitto, "lab", embedding_size=16)
    rng = np.random.default_rng(0)
    centres = {"Rain": rng.normal(size=16) * 4, "Dog": rng.normal(size=16) * 4}
    page.goto(dashboard.url)
    expect(page.locator("#detail-name")).to_have_text("lab")
    expect(page.locator("#map-empty")).to_be_visible()
    for i in range(12):
        label = "Rain" if i % 2 else "Dog"
        vector = (centres[label] + rng.normal(size=16) * 0.1).astype("<f2")
        device.window(label, embedding_b64=base64.b64encode(vector.tobytes()).decode(), embedding_dtype="float16")
    device.publish("health", {"schema_version": 1, "device_id": "lab", "wall_time": 1.7e9, "uptime_s": 30,
                              "rtf": 0.125, "latency_ms_p50": 41, "latency_ms_p99": 77, "overruns": 2,
                              "queue_depth": 0, "dropped": 0, "buffered": 0})
    device.publish("event", {"schema_version": 1, "device_id": "lab", "wall_time": 1.7e9, "type": "novel",
                             "novelty": 0.93})

    expect(page.locator("#map")).to_be_visible()
    expect(page.locator("#map-empty")).to_be_hidden()
    health = page.locator("#health")
    expect(health.locator("tr", has_text="real-time factor").locator("td")).to_have_text("0.125")
    expect(health.locator("tr", has_text="latency p50 / p99").locator("td")).to_have_text("41 / 77 ms")
    expect(health.locator("tr", has_text="overruns").locator("td")).to_have_text("2")
    expect(page.locator("#events li").first).to_contain_text("novel novelty=0.93")
    expect(card(page, "lab").locator(".health-line")).to_have_text("RTF 0.13 · p50 41 ms · overruns 2")
    expect(page.locator("#legend")).to_contain_text("Rain")
    expect(page.locator("#legend")).to_contain_text("Dog")

    headless = FakeDevice(mosquitto, "mic")  # an encoder without a classifier head: label fields are null
    headless.publish("window", {"schema_version": 1, "device_id": "mic", "seq": 0, "label": None,
                                "confidence": None, "top_k": [], "smoothed_label": None, "dbfs": -40.0})
    expect(card(page, "mic").locator(".label")).to_have_text("no classifier")
    expect(card(page, "mic").locator(".dbfs")).to_have_text("-40.0 dBFS")
    for d in (device, headless):
        d.close()


def pixels(page, canvas: str, rgb: tuple[int, int, int]) -> int:
    """Pixels of (about) colour ``rgb`` drawn on ``canvas``."""
    return page.evaluate("""([selector, [r, g, b]]) => {
        const c = document.querySelector(selector);
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          const near = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 40;
          if (near && data[i + 3] > 200) n++;
        }
        return n;
    }""", [canvas, list(rgb)])


NOVELTY_LINE = (210, 153, 34)  # app.js draws the scores in #d29922


def test_novelty_over_time_and_enrolled_labels_are_shown(mosquitto, dashboard, page):
    device = FakeDevice(mosquitto, "den", enrolled=("doorbell",))
    page.goto(dashboard.url)
    expect(page.locator("#detail-name")).to_have_text("den")
    expect(page.locator("#trained-labels > span")).to_have_text(LABELS)
    expect(page.locator("#enrolled-labels > span")).to_have_text(["doorbell"])
    expect(card(page, "den").locator(".enrolled-line")).to_have_text("enrolled: doorbell")
    expect(page.locator("#novelty-empty")).to_be_visible()  # no score until a window carries one
    expect(card(page, "den").locator(".novelty-row")).to_be_hidden()

    for score in (0.12, 0.4, 0.97):
        device.window("Rain", novelty=score)
    expect(page.locator("#novelty-summary")).to_have_text("latest 0.97 · max 0.97 · 3 scores · 0 novel events")
    device.window("doorbell", novelty=0.99)
    device.novel("start", 3.0, 0.99)
    expect(page.locator("#novelty-summary")).to_have_text(
        "latest 0.99 · max 0.99 · 4 scores · 1 novel event (one going on)", timeout=UPDATE_DEADLINE_MS)
    expect(card(page, "den").locator(".novelty")).to_have_text("novelty 0.99")
    expect(card(page, "den").locator(".novelty")).to_contain_class("active")
    expect(page.locator("#novelty-empty")).to_be_hidden()
    device.window("Rain", novelty=0.3)
    device.novel("end", 4.0, 0.99)
    expect(page.locator("#novelty-summary")).to_have_text("latest 0.30 · max 0.99 · 5 scores · 1 novel event")
    expect(card(page, "den").locator(".novelty")).not_to_contain_class("active")
    page.wait_for_function("() => document.getElementById('novelty').width > 100")
    assert pixels(page, "#novelty", NOVELTY_LINE) > 20, "the scores are drawn on the novelty plot"
    assert pixels(page, '.device-card[data-device="den"] .novelty-strip', NOVELTY_LINE) > 5

    # `enroll --label kettle` while the device runs: listen republishes its retained info
    device.info = {**device.info, "labels": [*LABELS, "doorbell", "kettle"], "enrolled_labels": ["doorbell", "kettle"]}
    device.publish("info", device.info, retain=True)
    expect(page.locator("#enrolled-labels > span")).to_have_text(["doorbell", "kettle"], timeout=UPDATE_DEADLINE_MS)
    expect(page.locator("#trained-labels > span")).to_have_text(LABELS)
    expect(card(page, "den").locator(".enrolled-line")).to_have_text("enrolled: doorbell, kettle")
    expect(page.locator("#enrolled-none")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-novelty.png"), full_page=True)
    device.close()


def test_poisoned_retained_messages_do_not_freeze_a_dashboard_started_after_them(mosquitto, page):
    """100,000 nested brackets and a 400-digit confidence, retained: every dashboard that starts later gets them
    first. It must still show the windows that follow within the usual 2 s."""
    poison = mqtt.Client(CallbackAPIVersion.VERSION2)
    poison.connect(mosquitto.host, mosquitto.port)
    poison.loop_start()
    deep = b'{"schema_version": 1, "seq": 1, "label": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    overflow = b'{"schema_version": 1, "seq": 1, "label": "Rain", "confidence": 1' + b"0" * 400 + b"}"
    for topic, payload in (("audeep/porch/window", deep), ("audeep/attic/window", overflow),
                           ("audeep/cellar/info", deep)):
        poison.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    poison.disconnect()
    poison.loop_stop()
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server:
        device = FakeDevice(mosquitto, "porch")
        page.goto(server.url)
        expect(page.locator("#broker")).to_have_text("broker: connected")
        device.window("Dog")
        expect(card(page, "porch").locator(".label")).to_have_text("Dog", timeout=UPDATE_DEADLINE_MS)
        assert server.state.stats()["bad_messages"] >= 2
        device.close()


def test_broker_outage_is_shown_and_recovered(mosquitto, dashboard, page):
    device = FakeDevice(mosquitto, "porch")
    page.goto(dashboard.url)
    expect(card(page, "porch").locator(".status")).to_have_text("online")
    expect(page.locator("#banner")).to_be_hidden()

    mosquitto.stop()
    expect(page.locator("#banner")).to_contain_text("broker disconnected")
    expect(page.locator("#broker")).to_have_text("broker: disconnected")

    mosquitto.start()
    expect(page.locator("#broker")).to_have_text("broker: connected", timeout=20_000)
    expect(page.locator("#banner")).to_be_hidden()
    device.client.reconnect_delay_set(0.2, 1)
    expect(card(page, "porch").locator(".status")).to_have_text("online", timeout=20_000)
    device.window("Dog")
    expect(card(page, "porch").locator(".label")).to_have_text("Dog", timeout=UPDATE_DEADLINE_MS)
    device.close()


def _get(url: str, headers: dict | None = None) -> int:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_token_is_required_off_loopback_and_enforced(mosquitto):
    with pytest.raises(ConfigError, match="--token"):
        DashboardServer(MqttSettings(url=mosquitto.url), host="0.0.0.0", port=0)

    with DashboardServer(MqttSettings(url=mosquitto.url), host="0.0.0.0", port=0, token="s3cret") as server:
        base = f"http://127.0.0.1:{server.port}"
        for path in ("/", "/static/app.js", "/events", "/api/state"):
            assert _get(base + path) == 401, path
        assert _get(base + "/?token=wrong") == 401
        assert _get(base + "/api/state", {"Authorization": "Bearer wrong"}) == 401
        assert _get(base + "/api/state", {"Authorization": "Bearer s3cret"}) == 200
        assert _get(base + "/?token=s3cret") == 303  # swaps the token in the URL for a cookie
        assert _get(base + "/static/style.css", {"Cookie": "audeep_dashboard_token=s3cret"}) == 200
        assert server.url.endswith(f":{server.port}/?token=s3cret")


def test_page_opened_from_the_printed_url_works_with_a_token(mosquitto, page):
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0, token="s3cret") as server:
        device = FakeDevice(mosquitto, "shed")
        page.goto(server.url)  # the token becomes a cookie that the live stream then carries
        expect(card(page, "shed").locator(".status")).to_have_text("online")
        assert "token" not in page.url
        device.close()


def test_loopback_dashboard_refuses_foreign_host_header(dashboard):
    base = f"http://127.0.0.1:{dashboard.port}"
    assert _get(base + "/") == 200
    assert _get(base + "/", {"Host": f"attacker.example:{dashboard.port}"}) == 403


def test_cli_prints_url_and_serves_the_page(mosquitto, tmp_path):
    command = [sys.executable, "-c", "from audeep_edge.cli import main; main()",
               "dashboard", "--broker", mosquitto.url, "--port", "0", "--db", str(tmp_path / "history.sqlite")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("dashboard: http://127.0.0.1:"), line
            url = line.split()[1]
            with urllib.request.urlopen(url, timeout=5) as response:
                assert b"/static/app.js" in response.read()
            with urllib.request.urlopen(url + "api/devices", timeout=5) as response:
                assert response.status == 200  # history from --db
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("args, message", [
    (["--broker", "http://example.org"], "error: --broker: expected mqtt://host[:port]"),
    (["--broker", "mqtt://[::1"], "error: --broker: expected mqtt://host[:port]"),  # urlsplit: "Invalid IPv6 URL"
    (["--host", "0.0.0.0"], "error: --host 0.0.0.0 exposes the dashboard"),
    (["--ca-file", "ca.pem"], "error: --ca-file needs an mqtts:// --broker URL"),  # listen's TLS options, checked alike
    (["--broker", "mqtts://127.0.0.1", "--cert-file", "/no/cert.pem"], "error: --cert-file /no/cert.pem: no such file"),
])
def test_cli_rejects_bad_options_in_one_line(args, message, monkeypatch, capsys):
    from audeep_edge.cli import main

    monkeypatch.setattr(sys, "argv", ["audeep-edge", "dashboard", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
