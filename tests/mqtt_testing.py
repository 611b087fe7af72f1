"""Test helper: a paho subscriber that records what a broker delivers (used by the MQTT and broker tests)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` s pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


class Collector:
    """Subscribes to ``topics`` (QoS 1) and records ``(topic, payload, retain)`` in arrival order.

    ``persistent=True`` uses a persistent session with a fixed client id, so messages published while
    this client reconnects after a broker restart are queued for it (the broker needs ``persistence true``).
    ``username``/``password`` log in (the embedded broker admits only its generated credentials).
    """

    def __init__(self, host: str, port: int, topics=("#",), *, client_id: str | None = None,
                 persistent: bool = False, username: str | None = None, password: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = [(topic, 1) for topic in topics]
        client_id = client_id or f"collector-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda client, *_: client.subscribe(self._topics)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(10), "collector could not subscribe"

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[tuple[bytes, bool]]:
        """``(payload, retain)`` of every message received on ``topic``, in order."""
        with self._lock:
            return [(payload, retain) for t, payload, retain in self.messages if t == topic]

    def json(self, topic: str) -> list[dict]:
        return [json.loads(payload) for payload, _ in self.on(topic)]

    def wait_for(self, condition, timeout: float = 10.0) -> bool:
        """Poll ``condition(self)`` until it is true or ``timeout`` s pass."""
        return wait_until(lambda: condition(self), timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
