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

Only clients with the credentials generated at start get in (user ``audeep``, a random password): the
in-process sink and dashboard get them in :attr:`EmbeddedBroker.client_url`, a person watching reads the
password from :attr:`EmbeddedBroker.password_file` (mode 0600, removed at stop). Without them, any local
process could read every stream, forge windows or publish a retained ``offline`` for a running device.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

from audeep_edge.errors import BrokerError

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
START_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 1.0
USERNAME = "audeep"


class SecretAuthPlugin(BaseAuthPlugin):
    """amqtt authentication: exactly one user name and password (compared in constant time)."""

    @dataclass
    class Config:
        username: str = ""
        password: str = ""

    async def authenticate(self, *, session: Any) -> bool:
        username, password = session.username or "", session.password or ""
        return bool(self.config.password) and hmac.compare_digest(username.encode(), self.config.username.encode()) \
            and hmac.compare_digest(password.encode(), self.config.password.encode())


def broker_config(password: str) -> dict:
    """amqtt's configuration: our own listening socket, only ``USERNAME``/``password`` admitted (no $SYS
    publisher, no packet logger)."""
    return {"listeners": {"default": {"type": "external"}},
            "plugins": {f"{__name__}.SecretAuthPlugin": {"username": USERNAME, "password": password}}}


class EmbeddedBroker:
    """A running amqtt broker. Use :func:`start_embedded_broker`; call :meth:`stop` when done.

    host, port, url : where it listens (``url`` is ``mqtt://host:port``, without credentials).
    username, password : the only credentials it admits, generated at start.
    client_url : ``mqtt://username:password@host:port``, for the clients of this process.
    password_file : the password in a file only this user can read, for ``mosquitto_sub -P "$(cat FILE)"``.
    """

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = DEFAULT_PORT if port is None else port
        self.username = USERNAME
        self.password = secrets.token_urlsafe(18)
        self.password_file: Path | None = None
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

    @property
    def client_url(self) -> str:
        return f"mqtt://{self.username}:{self.password}@{self.host}:{self.port}"

    def _start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise BrokerError(f"the embedded MQTT broker did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        fd, name = tempfile.mkstemp(prefix=f"audeep-broker-{self.port}-", suffix=".pw")  # mode 0600
        with os.fdopen(fd, "w") as stream:
            stream.write(self.password + "\n")
        self.password_file = Path(name)

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
        self._broker = Broker(broker_config(self.password), loop=self._loop)
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
        """Stop accepting, disconnect the clients, join the broker thread and remove the password file.
        Idempotent."""
        if self.password_file is not None:
            self.password_file.unlink(missing_ok=True)
            self.password_file = None
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
    EmbeddedBroker with ``.host``, ``.port``, ``.url``, ``.client_url`` (with the credentials), ``.password_file``
    and ``.stop()``.

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
