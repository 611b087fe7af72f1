"""Dashboard over history, end to end: real mosquitto, MQTT sinks as devices, the recorder inside the dashboard
on a real database (SQLite file; PostgreSQL server), the page in Debian's Chromium.

The stream is published fast with realistic wall times by default; ``AUDEEP_HISTORY_STREAM_S=600`` publishes it
in real time instead (1 window/s per device for that many seconds; docs/history.md reports such a run).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from audeep_edge.dashboard import DashboardServer
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.sinks.mqtt import MqttSink
from history_testing import LABELS, Publisher, clip, ogg_clip, window
from postgres_testing import db_url, postgres_server  # noqa: F401 (fixtures)
from test_dashboard import browser, card  # noqa: F401 (fixture)

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

REALTIME_S = float(os.environ.get("AUDEEP_HISTORY_STREAM_S", "0"))
HOP = 1.0
INFO = {"bundle": "esc10-test", "labels": LABELS, "enrolled_labels": [], "hop_seconds": HOP, "window_seconds": 5.0}
FIRST_SEQ = {"kitchen": 0, "garden": 500, "hallway": 42}  # devices that have been running for different times


class Fleet:
    """Three devices (real MQTT sinks) streaming windows of 1 s hop whose wall times end now (fast mode) or
    are now (real time)."""

    def __init__(self, broker, windows: int) -> None:
        self.windows = windows
        self.sinks = {name: MqttSink(MqttSettings(url=broker.url), name, INFO) for name in FIRST_SEQ}
        self.start = time.time() - (0 if REALTIME_S else windows * HOP)
        self.published = 0

    def publish(self, until: int) -> None:
        for i in range(self.published, until):
            if REALTIME_S:
                time.sleep(max(0.0, self.start + i * HOP - time.time()))
            for k, (name, sink) in enumerate(self.sinks.items()):
                label = LABELS[(i // 37 + k) % 3]
                sink.publish_window(window(name, FIRST_SEQ[name] + i, self.start + i * HOP, label))
        self.published = until

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()


def api(server: DashboardServer, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as response:
        return json.load(response)


def history(server: DashboardServer, device_id: str) -> dict:
    now = time.time()
    return api(server, f"/api/history?device={device_id}&from={now - 86400}&to={now + 60}&buckets=100")


def wait_recorded(server: DashboardServer, devices) -> None:
    """Until the dashboard's recorder has stored the devices' retained status: it is subscribed from then on."""
    wait_for(lambda: set(devices) <= {d["id"] for d in api(server, "/api/devices")})


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_history_survives_a_dashboard_restart_and_shows_every_window_and_the_clip(mosquitto, db_url, browser):
    windows = int(REALTIME_S / HOP) if REALTIME_S else 240
    fleet = Fleet(mosquitto, windows)
    server = DashboardServer(MqttSettings(url=mosquitto.url), port=0, db=db_url)
    server.start()
    wait_recorded(server, FIRST_SEQ)  # from here on, its session keeps what the fleet publishes
    fleet.publish(windows // 2)
    wait_for(lambda: history(server, "garden")["windows"] == windows // 2)
    server.stop()  # the dashboard goes away in the middle of the stream; its recorder's session stays on the broker

    down_until = windows // 2 + (10 if REALTIME_S else windows // 4)
    fleet.publish(down_until)
    novel_seq, novel_time = FIRST_SEQ["kitchen"] + down_until - 1, fleet.start + (down_until - 1) * HOP
    publisher = Publisher(mosquitto)
    publisher.send("kitchen", "event", {"schema_version": 1, "device_id": "kitchen", "wall_time": novel_time,
                                        "type": "novel", "seq": novel_seq, "state": "start", "peak": 0.99})
    publisher.send("kitchen", "clip", clip("kitchen", f"{int(novel_time * 1000)}-novel", novel_seq,
                                           novel_time - 1, ogg_clip()))
    # restarted: everything comes from the database
    server = DashboardServer(MqttSettings(url=mosquitto.url), port=0, db=db_url)
    server.start()
    fleet.publish(windows)
    for name in FIRST_SEQ:
        wait_for(lambda: history(server, name)["windows"] == windows)

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url)
    seq_ranges, shown = 0, 0
    for name, first in FIRST_SEQ.items():
        card(page, name).click()
        summary = page.locator("#history-summary")
        expect(summary).to_have_attribute("data-windows", str(windows))
        expect(page.locator("#history .ranges button.active")).to_have_text("24 h")
        shown += int(summary.get_attribute("data-windows"))
        seq_ranges += (first + windows - 1) - first + 1
        percentages = page.locator("#history-shares td.share").all_inner_texts()
        assert len(percentages) == 3 and round(sum(float(p.rstrip(" %")) for p in percentages), 6) == 100.0
        hours = page.eval_on_selector_all("#history-hours .hour[data-n]", "cells => cells.map(c => +c.dataset.n)")
        assert sum(hours) == windows
    assert shown == seq_ranges == 3 * windows, "the 24 h view shows every window of all three devices"
    expect(card(page, "hallway").locator(".confidence")).to_have_text("75 %")  # the smoothed label's own probability

    card(page, "kitchen").click()
    event = page.locator('#history-events li[data-type="novel"]')
    expect(event).to_contain_text("novel · start · peak 0.99")
    audio = event.locator("audio")
    audio.evaluate("a => a.load()")
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle(), timeout=10_000)
    assert audio.evaluate("a => a.duration") == pytest.approx(1.5, abs=0.1)
    page.select_option("#event-type", "label_change")
    expect(page.locator('#history-events li[data-type="novel"]')).to_have_count(0)
    page.context.close()
    server.stop()
    fleet.close()
    publisher.close()


def test_on_a_phone_axis_labels_never_overlap_and_zoom_works(mosquitto, tmp_path, browser):
    publisher = Publisher(mosquitto)
    publisher.send("attic", "info", {"schema_version": 1, "device_id": "attic", **INFO}, retain=True)
    publisher.send("attic", "status", "online", retain=True)
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0, db=str(tmp_path / "h.sqlite")) as server:
        wait_recorded(server, ["attic"])
        now = time.time()
        for i in range(120):  # two days, one window every 24 min, and the last 4 minutes densely
            publisher.send("attic", "window", window("attic", i, now - 2 * 86400 + 60 + i * 1440, LABELS[i % 2]))
        for i in range(60):
            publisher.send("attic", "window", window("attic", 200 + i, now - 240 + i * 4, "Dog"))
        wait_for(lambda: api(server, f"/api/history?device=attic&from={now - 3 * 86400}&to={now + 60}")["windows"]
                 == 180)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2)
        page = context.new_page()
        page.goto(server.url)
        expect(page.locator("#history")).to_be_visible()
        for text, expected in (("5 min", 60), ("1 h", 62), ("24 h", 120), ("7 d", 180)):
            page.locator("#history .ranges button", has_text=text).click()
            expect(page.locator("#history-summary")).to_have_attribute("data-windows", str(expected))
            boxes, chart = page.evaluate("""() => [
                [...document.querySelectorAll("#history-axis span")].map((s) => s.getBoundingClientRect().toJSON()),
                document.getElementById("history-timeline").getBoundingClientRect().toJSON()]""")
            assert len(boxes) >= 2, text
            for a, b in zip(boxes, boxes[1:]):
                assert a["right"] <= b["left"], f"{text}: axis labels overlap"
            assert boxes[0]["left"] >= chart["left"] and boxes[-1]["right"] <= chart["right"], text
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{text}: the page is wider than the phone"
        # drag across the right quarter of the 7 d timeline: zoomed to the last ~1.75 days
        page.locator("#history-timeline").scroll_into_view_if_needed()
        chart = page.locator("#history-timeline").bounding_box()
        page.mouse.move(chart["x"] + chart["width"] * 0.75, chart["y"] + 10)
        page.mouse.down()
        page.mouse.move(chart["x"] + chart["width"] - 1, chart["y"] + 10, steps=5)
        page.mouse.up()
        expect(page.locator("#zoom-reset")).to_be_visible()
        expect(page.locator("#history-summary")).not_to_have_attribute("data-windows", "180")
        zoomed = int(page.locator("#history-summary").get_attribute("data-windows"))
        assert 60 < zoomed < 180
        page.locator("#zoom-reset").click()
        expect(page.locator("#history-summary")).to_have_attribute("data-windows", "180")
        context.close()
    publisher.close()


def test_no_broker_banner_while_the_dashboard_is_still_connecting(mosquitto, tmp_path, browser):
    mosquitto.stop()  # the broker comes up a moment after the dashboard, as when both start at boot
    page = browser.new_context().new_page()
    page.add_init_script("""new MutationObserver(() => {
        const banner = document.getElementById("banner");
        if (banner && !banner.hidden) window.bannerShown = banner.textContent;
      }).observe(document, {subtree: true, childList: true, attributes: true});""")
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server:
        page.goto(server.url)
        expect(page.locator("#broker")).to_have_text("broker: connecting…")
        time.sleep(1.0)
        mosquitto.start()
        expect(page.locator("#broker")).to_have_text("broker: connected", timeout=10_000)
        assert page.evaluate("window.bannerShown") is None
    page.context.close()


def test_history_api_answers_bad_requests_with_400_and_unknown_clips_with_404(mosquitto, tmp_path):
    def status(server, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with DashboardServer(MqttSettings(url=mosquitto.url), port=0, db=str(tmp_path / "h.sqlite")) as server:
        assert status(server, "/api/devices") == 200
        assert status(server, "/api/history?device=a&from=10&to=5") == 400
        assert status(server, "/api/history?device=a&from=nan&to=5") == 400
        assert status(server, "/api/history?from=0&to=5") == 400
        assert status(server, "/api/events?from=0&to=10&limit=x") == 400
        assert status(server, "/api/clips/kitchen/nope") == 404
        assert status(server, "/api/clips/%2e%2e/") == 404
    with DashboardServer(MqttSettings(url=mosquitto.url), port=0) as server:  # live only: no history routes, no panel
        assert status(server, "/api/history?device=a&from=0&to=5") == 404
