"""MQTT broker URLs: ``mqtt://[user[:password]@]host[:port]`` (default port 1883) and ``mqtts://...`` (TLS, 8883)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from audeep_edge.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker listens and how to log in. ``str()`` never shows the password."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker_url(url: str, option: str = "--broker") -> BrokerAddress:
    """Parse a broker URL.

    Parameters
    ----------
    url : ``mqtt://host[:port]`` or ``mqtts://host[:port]``, optionally with ``user[:password]@``.
    option : the option or setting the URL came from, named in the error message.

    Raises
    ------
    ConfigError
        When the scheme is not mqtt/mqtts, the host is missing or malformed (an unclosed ``[``) or the port
        is not a number in 1..65535.
    """
    shown = re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", url)  # never echo a password
    hint = f"{option}: expected mqtt://host[:port] or mqtts://host[:port], got {shown!r}"
    try:  # urlsplit and .port raise ValueError for an unclosed '[', a bad IPv6 address or a bad port
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        raise ConfigError(hint) from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(hint)
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
