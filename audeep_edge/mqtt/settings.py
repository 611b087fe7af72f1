"""MQTT options shared by every client (the MQTT sink, the dashboard, the recorder, doctor's probe): one
validated :class:`MqttSettings`, the device id rule and what a broker's refusal means. Imports no paho, so
loading a config does not load the MQTT client.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from audeep_edge.errors import ConfigError
from audeep_edge.mqtt.broker_url import BrokerAddress, parse_broker_url

PASSWORD_ENV = "AUDEEP_MQTT_PASSWORD"
PROTOCOLS = ("3.1.1", "5")
# CONNACK reasons worth retrying (server unavailable, busy, quota, rate); every other refusal is final.
TRANSIENT_REFUSALS = {136, 137, 151, 159}
REFUSAL_HINTS = {
    132: " (try --protocol 3.1.1)",
    133: " (check --client-id)",
    134: f" (check --username and --password-file or ${PASSWORD_ENV})",
    135: f" (check --username and --password-file or ${PASSWORD_ENV})",
}
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def flag(name: str) -> str:
    """The CLI flag (and config-file key) of an :class:`MqttSettings` field, as error messages name it."""
    return "--broker" if name == "url" else "--" + name.replace("_", "-")


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it can be an MQTT topic level and an HA object id, else raise ConfigError."""
    if not DEVICE_ID.fullmatch(device_id):
        raise ConfigError(f"--device-id {device_id!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return device_id


@dataclass(frozen=True, repr=False)
class MqttSettings:
    """Validated MQTT options; every default lives here. The connection fields (``url`` to ``password``,
    and ``topic_prefix``) apply to every client; the rest to the MQTT sink only.

    url : ``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS).
    protocol : ``"3.1.1"`` or ``"5"``.
    qos : 0 or 1 for window/health/event messages (status, info and discovery always use QoS 1).
    topic_prefix : first topic level(s); topics are ``<topic_prefix>/<device_id>/<kind>``.
    client_id : MQTT client id; default ``audeep-edge-<device_id>``.
    keepalive : seconds between pings; a dead link is noticed after 1.5 x keepalive.
    ca_file, cert_file, key_file : PEM files for TLS (server CA; client certificate and key).
    tls_insecure : skip the server host name check (the certificate chain is still verified).
    username : broker user name (or ``user@`` in the URL).
    password_file : file holding the password (first line); else ``password``, else the URL's
        ``user:password@``, else ``$AUDEEP_MQTT_PASSWORD``. Never logged; ``repr`` masks it.
    queue_max : messages waiting while the broker is away; past it the oldest are dropped and counted.
    queue_dir : optional directory for an on-disk spool of undelivered messages (survives a restart).
    retain_status : retain ``status`` (``online``/``offline`` last will) so late subscribers see it.
    max_inflight : QoS 1 messages sent but not yet acknowledged.
    flush_timeout : seconds :meth:`MqttSink.close` waits for the buffer to drain.
    homeassistant : publish Home Assistant MQTT discovery.
    discovery_prefix : Home Assistant's discovery prefix.
    """

    url: str = "mqtt://127.0.0.1:1883"
    protocol: str = "3.1.1"
    qos: int = 1
    topic_prefix: str = "audeep"
    client_id: str | None = None
    keepalive: int = 30
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    username: str | None = None
    password_file: Path | None = None
    password: str | None = None
    queue_max: int = 10_000
    queue_dir: Path | None = None
    retain_status: bool = True
    max_inflight: int = 20
    flush_timeout: float = 5.0
    homeassistant: bool = False
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file", "password_file", "queue_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        address = self.address  # raises ConfigError for a bad URL
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"{flag('protocol')} {self.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        if self.qos not in (0, 1):
            raise ConfigError(f"{flag('qos')} {self.qos!r}: expected 0 or 1")
        for name in ("topic_prefix", "discovery_prefix"):
            prefix = getattr(self, name)
            if not prefix or prefix.strip("/") != prefix or "+" in prefix or "#" in prefix:
                raise ConfigError(f"{flag(name)} {prefix!r}: expected topic levels like 'audeep' or 'home/audeep'")
        bounds = {"keepalive": (5, 65535), "queue_max": (1, 10_000_000), "max_inflight": (1, 100)}
        for name, (low, high) in bounds.items():
            if not low <= getattr(self, name) <= high:
                raise ConfigError(f"{flag(name)} {getattr(self, name)!r}: expected {low}..{high}")
        if self.flush_timeout < 0:
            raise ConfigError(f"{flag('flush_timeout')} {self.flush_timeout!r}: expected seconds >= 0")
        tls_options = [name for name in ("ca_file", "cert_file", "key_file", "tls_insecure") if getattr(self, name)]
        if tls_options and not address.tls:
            raise ConfigError(f"{flag(tls_options[0])} needs an mqtts:// {flag('url')} URL, got {address}")
        if self.key_file and not self.cert_file:
            raise ConfigError(f"{flag('key_file')} needs {flag('cert_file')}")
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"{flag(name)} {path}: no such file")
        if (self.password_file or self.password) and not (self.username or address.username):
            raise ConfigError(f"a broker password needs {flag('username')}")

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(self.url, flag("url"))

    def credentials(self) -> tuple[str | None, str | None]:
        """``(username, password)`` by the precedence documented on the class.

        Raises
        ------
        ConfigError
            When the password file cannot be read or is empty.
        """
        address = self.address
        username = self.username or address.username
        if username is None:
            return None, None
        if self.password_file is not None:
            try:
                secret = self.password_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"{flag('password_file')} {self.password_file}: {exc.strerror}") from None
            if not secret or not secret[0]:
                raise ConfigError(f"{flag('password_file')} {self.password_file}: the first line is empty")
            return username, secret[0]
        return username, self.password or address.password or os.environ.get(PASSWORD_ENV)

    def __repr__(self) -> str:
        shown = [f"url={str(self.address)!r}"]
        for field in dataclasses.fields(self)[1:]:
            value = getattr(self, field.name)
            shown.append(f"{field.name}={'***' if field.name == 'password' and value else repr(value)}")
        return f"MqttSettings({', '.join(shown)})"
