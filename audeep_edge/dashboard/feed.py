"""Subscribes to ``<prefix>/+/{status,info,window,health,event}`` and feeds a :class:`FleetState`.

The client comes from the one factory (:func:`~audeep_edge.mqtt.client.make_client`: the settings' protocol,
credentials and TLS files, the reconnect back-off). It runs in a thread of ours (``loop_forever``), so a broker
that goes away is shown on the page and picked up again when it returns; retained ``status``/``info`` arrive
again on every reconnect. A message is never fatal to that thread (:meth:`FleetState.handle_message` counts what
it cannot use); should the thread end all the same, the page shows the broker as disconnected with the reason
instead of a live-looking, frozen feed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import paho.mqtt.client as mqtt

from audeep_edge.dashboard.mqtt_state import TOPIC_KINDS, FleetState
from audeep_edge.mqtt.client import PahoClient, connect_later, make_client
from audeep_edge.mqtt.messages import split_topic
from audeep_edge.mqtt.settings import MqttSettings

log = logging.getLogger(__name__)


class MqttFeed:
    """A paho client that keeps ``state`` up to date until :meth:`stop`.

    Parameters
    ----------
    settings : broker URL, protocol, credentials, TLS files and ``topic_prefix`` (the topic level(s) before
        ``<device_id>``: ``audeep`` in schema v1; may be ``home/audeep``).
    state : fleet state to update.

    Raises
    ------
    ConfigError : unreadable password file or unusable TLS files.
    """

    def __init__(self, settings: MqttSettings, state: FleetState) -> None:
        self.settings = settings
        self.broker = settings.address
        self.state = state
        self._client = make_client(settings, f"audeep-dashboard-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._thread = threading.Thread(target=self._run, name="dashboard-mqtt", daemon=True)

    def start(self) -> None:
        """Connect in the background; failures are retried, never raised."""
        connect_later(self._client, self.settings)
        self._thread.start()

    def stop(self) -> None:
        """Disconnect and join the network thread."""
        self._client.disconnect()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            self._client.loop_forever(retry_first_connection=True)
        except Exception as exc:  # noqa: BLE001 - shown on the page instead of a feed that looks alive
            log.error("the dashboard's MQTT client stopped: %s", exc)
            self.state.set_broker(False, f"the dashboard's MQTT client stopped ({type(exc).__name__}: {exc}); "
                                         "restart the dashboard")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the dashboard: %s", self.broker, reason_code)
            self.state.set_broker(False, f"refused: {reason_code}")
            return
        log.info("dashboard connected to %s", self.broker)
        client.subscribe([(f"{self.settings.topic_prefix}/+/{kind}", 0) for kind in TOPIC_KINDS])
        self.state.set_broker(True)

    def _on_connect_fail(self, client: PahoClient, userdata) -> None:
        self.state.set_broker(False, f"unreachable ({client.connect_error})" if client.connect_error else "unreachable")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code != 0:
            log.warning("lost the broker %s (%s); reconnecting", self.broker, reason_code)
        self.state.set_broker(False, "disconnected")

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        device_id, kind = split_topic(message.topic, self.settings.topic_prefix)  # subscribed to TOPIC_KINDS only
        if not self.state.handle_message(device_id, kind, message.payload, time.time()):
            log.debug("ignored a malformed or repeated message on %s", message.topic)
