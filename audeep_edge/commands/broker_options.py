"""The MQTT connection options that ``record`` and ``dashboard`` share, with listen's flag names and help texts;
each command turns them into one :class:`~audeep_edge.mqtt.settings.MqttSettings`."""

from __future__ import annotations

import typer

from audeep_edge.config import help_for


def broker_option() -> typer.models.OptionInfo:
    return typer.Option("mqtt://127.0.0.1:1883", "--broker", help="MQTT broker: mqtt://host[:port] or "
                        "mqtts://… (user[:password]@ allowed).")


def prefix_option() -> typer.models.OptionInfo:
    return typer.Option("audeep", "--prefix", help="First MQTT topic level(s) the devices publish under.")


def protocol_option() -> typer.models.OptionInfo:
    return typer.Option("3.1.1", "--protocol", help="MQTT protocol: 3.1.1 or 5.")


def username_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--username", help=help_for("username"))


def password_file_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--password-file", help=help_for("password_file"))


def ca_file_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--ca-file", help=help_for("ca_file"))


def cert_file_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--cert-file", help=help_for("cert_file"))


def key_file_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--key-file", help=help_for("key_file"))


def tls_insecure_option() -> typer.models.OptionInfo:
    return typer.Option(False, "--tls-insecure", help=help_for("tls_insecure"))
