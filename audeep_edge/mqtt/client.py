"""The one way to build a paho 2 client from :class:`~audeep_edge.mqtt.settings.MqttSettings`: protocol,
credentials, TLS, reconnect back-off and TCP_NODELAY, the same for the MQTT sink, the dashboard, the recorder
and doctor's probe.

>>> client = make_client(MqttSettings(url="mqtts://broker:8883"), "audeep-recorder-x", persistent=True)
>>> connect(client, settings, persistent=True)    # connect_async + loop_start, keeps the broker's session
"""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from audeep_edge.mqtt.security import secure
from audeep_edge.mqtt.settings import MqttSettings

PAHO_PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}
# A broker that comes back is used within RECONNECT_MAX_S: a longer back-off outlasted the drain at exit and
# lost a finite stream's tail. One TCP connect every 2 s to an absent broker costs nothing.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 2
SESSION_EXPIRY_S = 0xFFFFFFFF  # MQTT 5: a persistent session never expires (3.1.1 has no expiry)


class PahoClient(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed (paho only reports that it did)."""

    connect_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.connect_error = exc
            raise


def disable_nagle(client, userdata, sock) -> None:
    """paho writes whole packets; Nagle would hold a message back until the previous one is acknowledged
    (up to the 40 ms delayed ACK), which dominated the p99 publish latency on loopback."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_client(settings: MqttSettings, client_id: str, *, persistent: bool = False,
                manual_ack: bool = False) -> PahoClient:
    """A paho 2 client set up from ``settings`` (not yet connected; add callbacks, then :func:`connect`).

    Parameters
    ----------
    settings : broker URL, protocol, credentials and TLS files.
    client_id : MQTT client id; a persistent session belongs to it, so it must be stable across restarts.
    persistent : keep the broker-side session (subscriptions and queued QoS 1 messages) while disconnected.
    manual_ack : acknowledge received QoS 1 messages only when :meth:`PahoClient.ack` is called.

    Raises
    ------
    ConfigError : unreadable password file or unusable TLS files.
    """
    protocol = PAHO_PROTOCOLS[settings.protocol]
    clean_session = None if protocol == mqtt.MQTTv5 else not persistent
    client = PahoClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                        clean_session=clean_session, manual_ack=manual_ack)
    client.on_socket_open = disable_nagle
    client.suppress_exceptions = True  # a bug in a callback is logged, not fatal to the network thread
    secure(client, settings)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client


def connect_later(client: mqtt.Client, settings: MqttSettings, *, persistent: bool = False) -> None:
    """``connect_async``: the network loop the caller runs (``loop_start``, ``loop_forever``) connects and
    keeps reconnecting with the back-off. ``persistent`` asks MQTT 5 for a session that never expires."""
    address = settings.address
    if settings.protocol == "5" and persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect_async(address.host, address.port, keepalive=settings.keepalive, clean_start=False,
                             properties=properties)
    else:
        client.connect_async(address.host, address.port, keepalive=settings.keepalive)


def connect(client: mqtt.Client, settings: MqttSettings, *, persistent: bool = False) -> None:
    """Connect in the background (:func:`connect_later` + ``loop_start``); paho retries with the back-off."""
    connect_later(client, settings, persistent=persistent)
    client.loop_start()
