"""How a client proves itself and checks the broker: user name and password, TLS with the system CAs or a
private CA, and a client certificate for mutual TLS, all from :class:`~audeep_edge.mqtt.settings.MqttSettings`."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from audeep_edge.errors import ConfigError
from audeep_edge.mqtt.settings import MqttSettings, flag

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

TLS_FILES = ("ca_file", "cert_file", "key_file")


def secure(client: mqtt.Client, settings: MqttSettings) -> None:
    """Set the credentials and, for an ``mqtts://`` URL, TLS on a client that is not yet connected.

    Raises
    ------
    ConfigError : unreadable password file or unusable TLS files.
    """
    username, password = settings.credentials()
    if username is not None:
        client.username_pw_set(username, password)
    if settings.address.tls:
        configure_tls(client, settings)


def configure_tls(client: mqtt.Client, settings: MqttSettings) -> None:
    """Set up TLS on ``client`` from the settings' CA/cert/key files (system CAs when none is given).

    Raises
    ------
    ConfigError : a TLS file is missing or unusable.
    """
    try:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    except (ssl.SSLError, OSError) as exc:
        files = ", ".join(f"{flag(n)} {getattr(settings, n)}" for n in TLS_FILES if getattr(settings, n))
        raise ConfigError(f"TLS files ({files or 'system CAs'}) are unusable: {exc}") from None
    client.tls_insecure_set(settings.tls_insecure)
