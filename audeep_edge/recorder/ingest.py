"""The recorder: subscribes to a whole fleet and writes what it hears to a :class:`~audeep_edge.recorder.store.Store`.

Nothing is lost across a restart of the recorder or of the broker:

* a **persistent session** (fixed client id, ``clean_session=False`` / MQTT 5 ``clean_start=False`` with a session
  that never expires) and QoS 1 subscriptions: while the recorder is away the broker queues the fleet's QoS 1
  messages for it (mosquitto: up to ``max_queued_messages``, 1000 by default; raise it for long outages);
* **manual acknowledgement**: a message is acknowledged (PUBACK) only after the transaction that stores it has
  committed. A recorder killed before that gets the message again from the broker; the store ignores repeats;
* a broker restart keeps the session when the broker persists it (mosquitto ``persistence true``).

Threads: paho's network thread parses messages onto a queue; one writer thread stores them in batches (all that
is waiting, up to ``MAX_BATCH``), acknowledges them, and enforces the retention every ``interval_s``.
A database error (disk full, server gone) is retried with a back-off while nothing is acknowledged, so the
broker keeps the messages meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from audeep_edge.errors import BrokerError
from audeep_edge.mqtt.client import connect, make_client
from audeep_edge.mqtt.messages import KINDS, split_topic
from audeep_edge.mqtt.settings import REFUSAL_HINTS, TRANSIENT_REFUSALS, MqttSettings
from audeep_edge.recorder.records import Record, parse
from audeep_edge.recorder.retention import Retention
from audeep_edge.recorder.store import Store

log = logging.getLogger(__name__)

MAX_BATCH = 2000  # messages per transaction
QUEUE_MAX = 20_000  # messages parsed but not yet stored; paho's thread waits past it
QUEUE_MAX_BYTES = 64 * 1024 * 1024  # ... or past this many payload bytes (a batch being stored adds up to as much)
RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0
BAD_LOG_EVERY = 1000


def default_client_id(location: str, role: str) -> str:
    """A client id that is the same at every start of a recorder in ``role`` (``record``, ``dashboard``) writing
    to ``location`` on this host, and differs otherwise: two recorders sharing an id would keep taking each
    other's session."""
    digest = hashlib.sha256(f"{socket.gethostname()}\0{location}\0{role}".encode()).hexdigest()[:12]
    return f"audeep-rec-{digest}"  # 23 characters: the most every MQTT 3.1.1 broker must accept


class Recorder:
    """Records ``<topic_prefix>/+/{status,info,window,health,event,clip}`` into ``store`` until :meth:`stop`.

    Parameters
    ----------
    settings : broker URL, protocol, credentials, TLS and ``topic_prefix``; ``client_id`` when given names the
        persistent session (default: :func:`default_client_id`).
    store : where the history goes; :meth:`stop` does not close it.
    retention : how much history to keep.
    role : what runs the recorder (``record``, ``dashboard``), part of the default client id.
    """

    def __init__(self, settings: MqttSettings, store: Store, retention: Retention | None = None,
                 role: str = "record") -> None:
        self.settings, self.store = settings, store
        self.retention = retention or Retention()
        self.client_id = settings.client_id or default_client_id(store.location, role)
        self._prefix = settings.topic_prefix + "/"
        self._queue: queue.Queue[tuple[Record | None, int, int, int, int]] = queue.Queue(QUEUE_MAX)
        self._lock = threading.Lock()
        self._room = threading.Condition()  # guards _queued_bytes; notified as the writer takes messages
        self._queued_bytes = 0
        self._epoch = 0  # connections so far: a message id is only valid on the connection it came on
        self._connected = threading.Event()
        self._fatal: BrokerError | None = None
        self._counts = {"received": 0, "stored": 0, "bad": 0, "batches": 0}
        self._closing = threading.Event()  # stop() began: take no more messages (they stay unacknowledged)
        self._stopping = threading.Event()  # the network is down: the writer finishes what is queued
        self._client = make_client(settings, self.client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._writer = threading.Thread(target=self._write_loop, name="recorder-writer", daemon=True)

    def start(self) -> None:
        """Connect in the background (retried with a back-off) and start storing."""
        self._writer.start()
        connect(self._client, self.settings, persistent=True)
        log.info("recording %s+/… from %s into %s (session %s)", self._prefix, self.settings.address,
                 self.store.location, self.client_id)

    def wait_connected(self, timeout: float) -> bool:
        """True once subscribed within ``timeout`` s. Raises BrokerError when the broker refused us for good."""
        self._connected.wait(timeout)
        if self._fatal is not None:
            raise self._fatal
        return self._connected.is_set()

    def stop(self) -> None:
        """Disconnect, then store what was received (it is acknowledged at the next start, by redelivery)."""
        self._closing.set()
        self._client.disconnect()
        self._client.loop_stop()
        self._stopping.set()
        if self._writer.is_alive():
            self._writer.join()

    def stats(self) -> dict[str, Any]:
        """``{"received", "stored", "bad", "batches", "pending", "connected"}``: messages so far."""
        with self._lock:
            return {**self._counts, "pending": self._queue.qsize(), "connected": self._connected.is_set()}

    # -- paho thread ---------------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            message = f"broker {self.settings.address} refused the recorder: {reason_code}"
            if reason_code.value in TRANSIENT_REFUSALS:
                log.warning("%s; retrying", message)
                return
            self._fatal = BrokerError(message + REFUSAL_HINTS.get(reason_code.value, ""))
            self._connected.set()
            client.disconnect()
            return
        with self._lock:
            self._epoch += 1
        client.subscribe([(f"{self._prefix}+/{kind}", 1) for kind in KINDS])
        log.info("recorder connected to %s (session %s)", self.settings.address,
                 "resumed" if flags.session_present else "new")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.warning("broker %s refused the recorder's subscription: %s", self.settings.address, refused[0])
        self._connected.set()  # wait_connected() returns once the broker routes the fleet's messages to us

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self._epoch += 1
        self._connected.clear()
        if not self._closing.is_set() and self._fatal is None:
            log.warning("recorder lost the broker %s (%s); reconnecting", self.settings.address, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return
        device_id, kind = split_topic(message.topic, self.settings.topic_prefix)
        try:
            record = parse(device_id, kind, message.payload, time.time())
        except Exception:  # noqa: BLE001 - an escape here would leave the message unacknowledged, redelivered forever
            log.debug("parsing a message on %s failed", message.topic, exc_info=True)
            record = None
        with self._lock:
            self._counts["received"] += 1
            epoch = self._epoch
            if record is None:
                self._counts["bad"] += 1
                if self._counts["bad"] % BAD_LOG_EVERY == 1:
                    log.warning("ignored a malformed message on %s (%d so far)", message.topic, self._counts["bad"])
        size = len(message.payload)
        with self._room:  # a full queue holds paho's thread: back-pressure on the broker
            while self._queued_bytes and self._queued_bytes + size > QUEUE_MAX_BYTES:
                if self._closing.is_set():
                    return
                self._room.wait(0.5)
            self._queued_bytes += size
        while not self._closing.is_set():
            try:
                self._queue.put((record, message.mid, message.qos, epoch, size), timeout=0.5)
                return
            except queue.Full:
                continue

    # -- writer thread -------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        next_retention = 0.0
        while True:
            if time.monotonic() >= next_retention:
                self._enforce_retention()
                next_retention = time.monotonic() + self.retention.interval_s
            try:
                batch = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            with self._room:
                self._queued_bytes -= sum(item[4] for item in batch)
                self._room.notify_all()
            if not self._store([record for record, *_ in batch if record is not None]):
                return  # stopping with the database away: the broker redelivers at the next start
            self._acknowledge(batch)

    def _store(self, records: list[Record]) -> bool:
        delay, failing = RETRY_MIN_S, None
        while True:
            try:
                self.store.write(records)
            except self.store.errors as exc:
                if str(exc) != failing:
                    log.warning("cannot write to %s (%s); retrying", self.store.location, exc)
                    failing = str(exc)
                if self._stopping.wait(delay):
                    return False
                delay = min(2 * delay, RETRY_MAX_S)
                continue
            if failing is not None:
                log.info("writing to %s again", self.store.location)
            with self._lock:
                self._counts["stored"] += len(records)
                self._counts["batches"] += 1
            return True

    def _acknowledge(self, batch: list[tuple[Record | None, int, int, int]]) -> None:
        with self._lock:  # the epoch cannot move while acknowledging: a stale id would ack another message
            for _, mid, qos, epoch, _size in batch:
                if qos > 0 and epoch == self._epoch:
                    self._client.ack(mid, qos)

    def _enforce_retention(self) -> None:
        retention = self.retention
        try:
            if retention.max_age_s is not None:
                deleted = self.store.delete_before(time.time() - retention.max_age_s)
                if deleted:
                    log.info("retention: deleted %d records older than %.0f s", deleted, retention.max_age_s)
            if retention.max_bytes is not None:
                deleted = self.store.trim_to(retention.max_bytes)
                if deleted:
                    log.info("retention: deleted the oldest %d records to stay under %d bytes", deleted,
                             retention.max_bytes)
        except self.store.errors as exc:
            log.warning("retention on %s failed (%s); trying again later", self.store.location, exc)
