"""Is the broker there? A TCP connect, an MQTT CONNECT and its CONNACK, with a short timeout.

The probe uses its own client id and no last will, and publishes nothing: running ``doctor`` next to a live
``listen`` leaves that device's retained ``status`` alone.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from audeep_edge.mqtt.client import make_client
from audeep_edge.mqtt.settings import REFUSAL_HINTS, MqttSettings


@dataclass(frozen=True)
class ProbeResult:
    """``ok`` when the broker accepted the CONNECT; ``message`` is one line either way."""

    ok: bool
    message: str


def probe_broker(settings: MqttSettings, timeout: float = 3.0) -> ProbeResult:
    """Connect to ``settings.url`` with its TLS files and credentials, wait up to ``timeout`` seconds for the
    CONNACK, then disconnect.

    Raises
    ------
    ConfigError : unreadable password file or unusable TLS files (from the client factory listen uses too).
    """
    address = settings.address
    client = make_client(settings, f"audeep-edge-doctor-{os.getpid()}")
    client.connect_timeout = timeout
    answers = []
    client.on_connect = lambda c, userdata, flags, reason_code, properties: answers.append(reason_code)
    start = time.monotonic()
    try:
        client.connect(address.host, address.port, keepalive=settings.keepalive)
        while not answers and time.monotonic() - start < timeout:
            client.loop(timeout=0.05)
    except (OSError, ValueError) as exc:  # refused, unreachable, unknown host, TLS failure, timeout
        return ProbeResult(False, f"cannot reach {address}: {_reason(exc)}")
    finally:
        client.disconnect()
        client.loop(timeout=0.05)  # writes the DISCONNECT, after which paho closes the socket
    elapsed_ms = 1000 * (time.monotonic() - start)
    if not answers:
        return ProbeResult(False, f"{address} took the connection but sent no CONNACK within {timeout:g} s "
                                  f"(is it an MQTT {settings.protocol} broker?)")
    reason = answers[0]
    if reason.is_failure:
        return ProbeResult(False, f"{address} refused the connection: {reason}"
                                  f"{REFUSAL_HINTS.get(reason.value, '')}")
    return ProbeResult(True, f"{address} accepted an MQTT {settings.protocol} connection in {elapsed_ms:.0f} ms")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
