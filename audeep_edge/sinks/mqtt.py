"""MQTT sink, schema v1 (docs/mqtt.md): paho-mqtt 2 behind an own bounded FIFO, so nothing measured is
lost while the broker is away.

Delivery model
--------------
* ``publish_*`` (pipeline thread) encodes and appends to the FIFO; it never touches the network.
* One writer thread hands messages to paho in FIFO order, and only while connected: paho's own offline
  handling differs by QoS (it drops QoS 0 when offline) and is not relied upon.
* QoS 1: at most ``max_inflight`` messages are unacknowledged; a message leaves the buffer at its PUBACK.
  After a reconnect paho retransmits the unacknowledged ones itself (same order, DUP flag) and the writer
  sends nothing new until they are acknowledged, so order holds. A broker crash gives duplicates, not losses.
* QoS 0 has no acknowledgement: a message written into a socket the broker has just closed vanishes.
  The writer therefore remembers what it sent in the last ``QOS0_REPLAY_S`` seconds and puts it back at
  the head of the FIFO when the connection drops. A broker restart repeats up to that much and loses
  nothing; a link that dies silently (no FIN/RST) is noticed only after 1.5 x keepalive: use QoS 1 there.
* Past ``queue_max`` waiting messages the oldest is dropped and counted (:meth:`MqttSink.stats`).
* Subscribers drop repeats with the window ``seq``: around a reconnect repeats are possible, gaps are not.
* Reconnection attempts back off from 1 s to at most ``RECONNECT_MAX_S`` (2 s), so a broker that returns is
  used within seconds, also during the bounded drain of :meth:`MqttSink.close`. What is still undelivered
  then, or was dropped, is reported in :attr:`MqttSink.failure`: nothing is lost silently.

Why one module of ~430 lines: it is one class whose FIFO, in-flight set, QoS 0 replay and spool share one
lock and one state machine; settings, URLs, TLS and the paho client live in :mod:`audeep_edge.mqtt`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from audeep_edge.errors import BrokerError
from audeep_edge.mqtt.client import RECONNECT_MAX_S, RECONNECT_MIN_S, PahoClient, connect, make_client
from audeep_edge.mqtt.settings import REFUSAL_HINTS, TRANSIENT_REFUSALS, MqttSettings, check_device_id, flag
from audeep_edge.sinks.base import Payload
from audeep_edge.sinks.homeassistant import Entities, discovery_messages, ha_status_topic
from audeep_edge.sinks.payload import SCHEMA_VERSION, to_json
from audeep_edge.sinks.spool import DiskSpool, Message

log = logging.getLogger(__name__)
paho_log = logging.getLogger(f"{__name__}.paho")

QOS0_REPLAY_S = 2.0
DROP_LOG_EVERY = 100
CONTROL_QOS = 1  # status, info and discovery: few messages that dashboards and HA depend on


class MqttSink:
    """Publishes schema v1 messages to ``<topic_prefix>/<device_id>/{status,info,window,health,event,clip}``.

    Connects in the background (``connect_async`` + ``loop_start``) and keeps retrying with a 1..2 s
    back-off; meanwhile messages are buffered. A refusal that retrying cannot fix (bad credentials, not
    authorised) makes :meth:`wait_connected` and every ``publish_*`` raise :class:`BrokerError`.

    After :meth:`close`, :attr:`failure` is None when every message reached the broker, else one line saying
    how many were not delivered (and whether they were spooled or lost) or were dropped by the bound.

    Parameters
    ----------
    settings : validated options.
    device_id : second topic level (see :func:`check_device_id`).
    info : the retained ``info`` payload (``schema_version`` and ``device_id`` are added).
    entities : the optional Home Assistant entities (novelty, watched labels, dashboard link).
    """

    def __init__(self, settings: MqttSettings, device_id: str, info: Payload, *,
                 entities: Entities = Entities()) -> None:
        self.settings = settings
        self.device_id = check_device_id(device_id)
        self._address = settings.address
        self._base = f"{settings.topic_prefix}/{device_id}"
        self._info_payload = {"schema_version": SCHEMA_VERSION, "device_id": device_id, **info}
        self._info = to_json(self._info_payload)
        self._entities = entities
        self._discovery = self._discovery_messages()
        self._ha_status = ha_status_topic(settings.discovery_prefix)

        self._cv = threading.Condition()
        self._queue: deque[Message] = deque()  # waiting, oldest first
        self._inflight: dict[int, Message] = {}  # QoS 1: mid -> sent, not yet acknowledged (send order)
        self._recent: deque[tuple[float, Message]] = deque()  # QoS 0: (monotonic send time, message)
        self._sending: Message | None = None  # QoS 0: handed to paho right now
        self._epoch = 0  # connections lost so far
        self._registering = False  # QoS 1: the writer is between publish() and recording the mid
        self._early_acks: set[int] = set()
        self._connected = False
        self._paused = False  # the writer saw the socket close before on_disconnect ran
        self._resend_pending = False
        self._fatal: BrokerError | None = None
        self._last_error: str | None = None
        self._dropped = 0
        self._stopping = False
        self._closed = False
        self._spool: DiskSpool | None = None
        self._spooling = False
        self.failure: str | None = None
        if settings.queue_dir is not None:
            self._load_spool(settings.queue_dir)

        self._client = self._make_client()
        self._writer = threading.Thread(target=self._write_loop, name=f"mqtt-writer-{device_id}", daemon=True)
        self._writer.start()
        connect(self._client, settings)
        log.info("publishing to %s under %s/", self._address, self._base)

    # -- Sink protocol -------------------------------------------------------------------------------

    def publish_window(self, payload: Payload) -> None:
        self._enqueue("window", payload)

    def publish_health(self, payload: Payload) -> None:
        self._enqueue("health", payload)

    def publish_event(self, payload: Payload) -> None:
        self._enqueue("event", payload)

    def publish_clip(self, payload: Payload) -> None:
        self._enqueue("clip", payload)

    def update_info(self, fields: Payload) -> None:
        """Merge ``fields`` into the retained ``info`` and publish it again, e.g. the labels after an ``enroll``
        that a running ``listen`` picked up. Every (re)connection announces the current ``info``."""
        self._info_payload = {**self._info_payload, **fields}
        self._info = to_json(self._info_payload)
        # paho marks the client connected before on_connect runs, so an update racing a connection is sent by
        # one or both of them. QoS 0: a copy lost with the link is replaced by the reconnect's announcement,
        # whereas paho would resend a QoS 1 copy after it, possibly leaving an older info retained.
        if self._client.is_connected():
            self._client.publish(f"{self._base}/info", self._info, qos=0, retain=True)
        if self._discovery and "labels" in fields:  # the scene's options
            self._discovery = self._discovery_messages()
            if self._client.is_connected():
                for topic, payload in self._discovery:
                    self._client.publish(topic, payload, qos=0, retain=True)

    def close(self) -> None:
        """Deliver what is buffered (at most ``flush_timeout`` s, reconnecting meanwhile), publish ``offline``
        and disconnect.

        What is still undelivered goes to the spool (``queue_dir``) or is lost; either way :attr:`failure`
        says so, as it does for messages the bound dropped during the run.
        """
        if self._closed:
            return
        self._closed = True
        with self._cv:
            self._cv.wait_for(lambda: self._buffered() == 0 or self._fatal is not None, self.settings.flush_timeout)
            self._stopping = True
            self._cv.notify_all()
        self._writer.join()
        if self._connected:
            info = self._client.publish(f"{self._base}/status", "offline", qos=CONTROL_QOS,
                                        retain=self.settings.retain_status)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=1.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._save_leftovers()

    # -- state for the pipeline and the CLI ----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``{"buffered": n, "dropped": n, "connected": bool}`` for health payloads."""
        with self._cv:
            return {"buffered": self._buffered(), "dropped": self._dropped, "connected": self._connected}

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the broker; True when connected.

        Raises
        ------
        BrokerError
            When the broker refused the connection for good (credentials, authorisation, protocol).
        """
        with self._cv:
            self._cv.wait_for(lambda: self._connected or self._fatal is not None, timeout)
            if self._fatal is not None:
                raise self._fatal
            return self._connected

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed (one line, no password), or None."""
        with self._cv:
            return self._last_error

    # -- queue ---------------------------------------------------------------------------------------

    def _buffered(self) -> int:
        return len(self._queue) + len(self._inflight)

    def _enqueue(self, kind: str, payload: Payload) -> None:
        if self._fatal is not None:
            raise self._fatal
        message = Message(f"{self._base}/{kind}", to_json(payload))
        with self._cv:
            self._queue.append(message)
            self._trim()
            if self._spool is not None:
                self._spool_message(message)
            self._cv.notify_all()

    def _trim(self) -> None:
        """Drop the oldest waiting messages past ``queue_max`` (caller holds the lock)."""
        while len(self._queue) > self.settings.queue_max:
            self._queue.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % DROP_LOG_EVERY == 0:
                log.warning("MQTT buffer full (%d messages): dropping the oldest, %d dropped so far",
                            self.settings.queue_max, self._dropped)

    def _write_loop(self) -> None:
        qos = self.settings.qos
        while True:
            with self._cv:
                while not self._stopping and not self._ready_to_send():
                    self._clear_spool_when_drained()
                    self._cv.wait()
                if self._stopping:
                    return
                message = self._queue.popleft()
                epoch = self._epoch
                self._sending = message
                self._registering = qos == 1
                self._early_acks.clear()
            try:
                info = self._client.publish(message.topic, message.payload, qos=qos, retain=message.retain)
            except ValueError as exc:  # payload too large for MQTT: retrying cannot help
                log.error("dropped an unpublishable message on %s: %s", message.topic, exc)
                with self._cv:
                    self._sending, self._registering = None, False
                    self._dropped += 1
                continue
            with self._cv:
                self._registering = False
                if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self._epoch == epoch:
                    self._paused = True  # on_disconnect is about to run; send nothing until the reconnect
                if qos == 1:
                    # paho keeps it and (re)sends it after a reconnect; it stays ours until its PUBACK.
                    if info.mid not in self._early_acks:
                        self._inflight[info.mid] = message
                    self._early_acks.clear()
                elif self._epoch == epoch:  # else the disconnect handler already put it back
                    if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                        self._queue.appendleft(message)
                    else:
                        now = time.monotonic()
                        self._recent.append((now, message))
                        while self._recent[0][0] < now - QOS0_REPLAY_S:
                            self._recent.popleft()
                self._sending = None
                self._cv.notify_all()  # close() may be waiting for the buffer to drain

    def _ready_to_send(self) -> bool:
        if not (self._connected and self._queue) or self._paused or self._fatal is not None:
            return False
        if self.settings.qos == 1:
            return not self._resend_pending and len(self._inflight) < self.settings.max_inflight
        return True

    # -- spool ---------------------------------------------------------------------------------------

    def _load_spool(self, directory: Path) -> None:
        self._spool = DiskSpool(directory, self._base.replace("/", "_"))
        backlog = self._spool.load(self.settings.queue_max)
        if backlog:
            self._queue.extend(backlog)
            self._spooling = True
            log.info("%d undelivered MQTT messages from %s are sent first", len(backlog), self._spool.path)
        else:
            self._spool.clear()

    def _spool_message(self, message: Message) -> None:
        """Mirror the buffer on disk while messages wait for the broker (caller holds the lock)."""
        assert self._spool is not None
        try:
            if self._spooling and self._spool.records < 2 * self.settings.queue_max:
                self._spool.append(message)
            elif self._spooling or not self._connected:
                self._spool.rewrite([*self._inflight.values(), *self._queue])
                self._spooling = True
        except OSError as exc:
            log.error("MQTT spool %s: %s; buffering in memory only", self._spool.path, exc.strerror)
            self._spool, self._spooling = None, False

    def _clear_spool_when_drained(self) -> None:
        if self._spooling and self._connected and self._buffered() == 0 and self._spool is not None:
            self._spool.clear()
            self._spooling = False

    def _save_leftovers(self) -> None:
        with self._cv:
            leftovers = [*self._inflight.values(), *self._queue]
            dropped, reason = self._dropped, self._last_error
        saved_to = None
        if self._spool is not None:
            try:
                if leftovers:
                    self._spool.rewrite(leftovers)
                    saved_to = self._spool.path
                else:
                    self._spool.clear()
            except OSError as exc:
                log.error("MQTT spool %s: %s", self._spool.path, exc.strerror)
        problems = []
        if leftovers:
            fate = f"saved to {saved_to}, sent first on the next start" if saved_to else "lost"
            problems.append(f"{len(leftovers)} messages could not be delivered ({fate})")
        if dropped:
            problems.append(f"{dropped} messages were dropped while {flag('queue_max')} "
                            f"{self.settings.queue_max} were waiting")
        if problems:
            self.failure = (f"MQTT broker {self._address}: {'; '.join(problems)}"
                            + (f"; last error: {reason}" if reason else ""))
            log.debug("%s", self.failure)  # the caller reports it (listen: one error line, exit 2)

    # -- paho ----------------------------------------------------------------------------------------

    def _make_client(self) -> PahoClient:
        settings = self.settings
        client = make_client(settings, settings.client_id or f"audeep-edge-{self.device_id}")
        client.on_log = self._on_log
        client.will_set(f"{self._base}/status", "offline", qos=CONTROL_QOS, retain=settings.retain_status)
        client.max_inflight_messages_set(settings.max_inflight)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_log(self, client, userdata, level: int, text: str) -> None:
        # paho logs packets (never the password) and errors caught in callbacks. Its network loop also
        # reports "Client is not connected" at error level after every failed attempt: that is our
        # buffering-and-retrying state, already reported once by _on_connect_fail.
        if level == mqtt.MQTT_LOG_ERR and not text.startswith("Client is not connected"):
            paho_log.error("%s", text)
        elif level == mqtt.MQTT_LOG_WARNING:
            paho_log.warning("%s", text)
        else:
            paho_log.debug("%s", text)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused(client, reason_code)
            return
        base = self._base
        client.publish(f"{base}/status", "online", qos=CONTROL_QOS, retain=self.settings.retain_status)
        client.publish(f"{base}/info", self._info, qos=CONTROL_QOS, retain=True)
        if self._discovery:
            client.subscribe(self._ha_status, qos=1)
            self._publish_discovery(client)
        with self._cv:
            self._connected, self._paused = True, False
            self._last_error = None
            self._resend_pending = bool(self._inflight)
            backlog = self._buffered()
            self._cv.notify_all()
        log.info("connected to %s (%d buffered messages to deliver)", self._address, backlog)

    def _refused(self, client: mqtt.Client, reason_code) -> None:
        message = f"broker {self._address} refused the connection: {reason_code}"
        if reason_code.value in TRANSIENT_REFUSALS:
            log.warning("%s; retrying", message)
            with self._cv:
                self._last_error = message
            return
        error = BrokerError(message + REFUSAL_HINTS.get(reason_code.value, ""))
        log.debug("%s", error)  # raised by wait_connected() and publish_*(); the CLI prints it once
        with self._cv:
            self._fatal = error
            self._last_error = message
            self._cv.notify_all()
        client.disconnect()  # retrying with the same credentials cannot succeed

    def _on_connect_fail(self, client: PahoClient, userdata) -> None:
        message = f"cannot reach the broker {self._address}: {client.connect_error or 'connection failed'}"
        with self._cv:
            changed = message != self._last_error
            self._last_error = message
        if changed:
            log.warning("%s; buffering and retrying every %d-%d s", message, RECONNECT_MIN_S, RECONNECT_MAX_S)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cv:
            was_connected = self._connected
            self._connected = False
            self._epoch += 1
            if not was_connected and self._fatal is None:
                self._last_error = (f"broker {self._address} closed the connection without accepting it "
                                    f"(does it speak MQTT {self.settings.protocol}?)")
            if self.settings.qos == 0 and not self._closed:  # after our own DISCONNECT all was written
                horizon = time.monotonic() - QOS0_REPLAY_S
                replay = [message for sent, message in self._recent if sent >= horizon]
                if self._sending is not None:
                    replay.append(self._sending)
                self._recent.clear()
                self._queue.extendleft(reversed(replay))
                self._trim()
            self._cv.notify_all()
        if was_connected and not self._closed:
            log.warning("lost the broker %s (%s): buffering and reconnecting", self._address, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s rejected message %d: %s", self._address, mid, reason_code)
        if self.settings.qos == 0:
            return
        with self._cv:
            if self._inflight.pop(mid, None) is None and self._registering:
                self._early_acks.add(mid)
            if not self._inflight:
                self._resend_pending = False
            self._cv.notify_all()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._ha_status and message.payload.strip() == b"online":
            log.info("Home Assistant is online: publishing discovery")
            self._publish_discovery(client)

    def _discovery_messages(self) -> list[tuple[str, str]]:
        if not self.settings.homeassistant:
            return []
        return discovery_messages(self.device_id, self._info_payload, topic_prefix=self.settings.topic_prefix,
                                  discovery_prefix=self.settings.discovery_prefix, entities=self._entities)

    def _publish_discovery(self, client: mqtt.Client) -> None:
        for topic, payload in self._discovery:
            client.publish(topic, payload, qos=CONTROL_QOS, retain=True)
