"""Zero-setup MQTT broker: amqtt in a background thread with its own asyncio loop.

``listen`` without ``--broker`` starts one on 127.0.0.1 (port 1883, or a free port when 1883 is taken)
so the dashboard and ``mosquitto_sub`` have something to connect to. amqtt speaks MQTT 3.1.1 only
(no MQTT 5), keeps retained messages in memory and honours last wills; it is meant for one device and
a few local subscribers, not as a production broker.

We own the listening socket (amqtt's "external" listener) rather than letting amqtt bind: the port
is chosen atomically (1883, else the kernel's pick; no probe-then-bind race) and :meth:`EmbeddedBroker.stop`
can stop accepting and bound amqtt's shutdown. amqtt 0.12 sometimes loses a fast PUBACK from a QoS 1
subscriber ("Received PUBACK for unknown pending message") and then waits for it forever; the message
was delivered, but its shutdown stalls, so :meth:`EmbeddedBroker.stop` gives it one second.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from typing import Any

from audeep_edge.errors import BrokerError

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
START_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 1.0
CONFIG = {
    "listeners": {"default": {"type": "external"}},
    # anonymous access only: no $SYS publisher, no packet logger
    "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
}


class EmbeddedBroker:
    """A running amqtt broker. Use :func:`start_embedded_broker`; call :meth:`stop` when done.

    host, port, url : where it listens (``url`` is ``mqtt://host:port``).
    """

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = DEFAULT_PORT if port is None else port
        self._fallback = port is None
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BrokerError | None = None
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise BrokerError(f"the embedded MQTT broker did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BrokerError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - reported to the starting thread as one line
            self._error = BrokerError(f"cannot start the embedded MQTT broker on {self.host}: {exc}")
        self._ready.set()
        if self._error is None:
            self._loop.run_forever()
        leftovers = asyncio.all_tasks(self._loop)  # what a stalled amqtt shutdown left running
        if leftovers:
            amqtt_log = logging.getLogger("amqtt")
            level = amqtt_log.level
            amqtt_log.setLevel(logging.CRITICAL)  # its tasks report being cancelled as errors
            for task in leftovers:
                task.cancel()
            self._loop.run_until_complete(asyncio.wait(leftovers, timeout=SHUTDOWN_TIMEOUT_S))
            amqtt_log.setLevel(level)
        self._loop.close()

    async def _serve(self) -> None:
        from amqtt.broker import Broker  # imported here: only listen without --broker needs it

        self._broker = Broker(CONFIG, loop=self._loop)
        await self._broker.start()
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not self._fallback:
                await self._broker.shutdown()
                raise BrokerError(f"cannot listen on {self.host}:{self.port} for the embedded MQTT broker: "
                                  f"{exc.strerror}") from None
            log.debug("port %d on %s is taken; letting the kernel pick one", self.port, self.host)
            self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter

        await self._broker.external_connected(StreamReaderAdapter(reader), StreamWriterAdapter(writer), "default")

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        try:
            await asyncio.wait_for(self._broker.shutdown(), SHUTDOWN_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError):
            log.debug("amqtt did not finish its shutdown within %.0f s; stopping it anyway", SHUTDOWN_TIMEOUT_S)
        self._loop.stop()

    def stop(self) -> None:
        """Stop accepting, disconnect the clients and join the broker thread. Idempotent."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        self._thread.join(START_TIMEOUT_S)
        log.info("stopped the embedded MQTT broker on %s", self.url)


def start_embedded_broker(host: str = "127.0.0.1", port: int | None = None) -> EmbeddedBroker:
    """Start an MQTT 3.1.1 broker in this process.

    Parameters
    ----------
    host : address to listen on (127.0.0.1: this machine only; 0.0.0.0: the whole network).
    port : TCP port; None takes 1883, or a free port when 1883 is taken.

    Returns
    -------
    EmbeddedBroker with ``.host``, ``.port``, ``.url`` and ``.stop()``.

    Raises
    ------
    BrokerError
        When the requested ``port`` is taken or the broker cannot start.
    """
    started = time.perf_counter()
    broker = EmbeddedBroker(host, port)
    broker._start()
    log.info("embedded MQTT broker listening on %s (started in %.0f ms)", broker.url,
             1000 * (time.perf_counter() - started))
    return broker
