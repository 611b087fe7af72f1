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


def listen_option(name: str, default: object = None) -> typer.models.OptionInfo:
    """The option of listen's setting ``name`` (``--name-with-dashes``, listen's help text); ``default`` as listen's."""
    return typer.Option(default, f"--{name.replace('_', '-')}", help=help_for(name))
