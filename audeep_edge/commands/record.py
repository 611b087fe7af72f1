"""``audeep-edge record``: write everything a broker's fleet publishes to a history database."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Optional

import typer

from audeep_edge.commands.broker_options import broker_option, listen_option, prefix_option, protocol_option

CONNECT_WAIT_S = 5.0  # how long to wait for the broker before saying it is away (recording starts when it is back)


def register(app: typer.Typer) -> None:
    """Register ``record`` on the main app."""
    app.command("record")(record)


def db_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--db", help="History database: a file path (SQLite; default "
                        "$XDG_DATA_HOME/audeep-edge/history.sqlite) or postgresql://user[:password]@host[:port]/db.")


def keep_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--keep", help="Delete history older than this (30d, 12h, 2w, 90min; default: keep).")


def max_size_option() -> typer.models.OptionInfo:
    return typer.Option(None, "--max-size", help="Delete the oldest history past this size (500MB, 2GiB; default: "
                        "no bound).")


def record(
    broker: str = broker_option(),
    db: Optional[str] = db_option(),
    keep: Optional[str] = keep_option(),
    max_size: Optional[str] = max_size_option(),
    prefix: str = prefix_option(),
    client_id: Optional[str] = typer.Option(None, "--client-id", help="MQTT client id naming the recorder's "
                                            "persistent session (default: derived from the host and --db)."),
    protocol: str = protocol_option(),
    username: Optional[str] = listen_option("username"),
    password_file: Optional[Path] = listen_option("password_file"),
    ca_file: Optional[Path] = listen_option("ca_file"),
    cert_file: Optional[Path] = listen_option("cert_file"),
    key_file: Optional[Path] = listen_option("key_file"),
    tls_insecure: bool = listen_option("tls_insecure", False),
) -> None:
    """Record windows, events, health, device info and clips of every device under PREFIX/+/… until Ctrl-C.

    Nothing is lost while the recorder restarts: its MQTT session persists and messages are acknowledged
    only once stored, so the broker keeps them meanwhile."""
    from audeep_edge.mqtt.settings import MqttSettings
    from audeep_edge.recorder import Recorder, open_store
    from audeep_edge.recorder.retention import retention_from
    from audeep_edge.recorder.store import default_location

    settings = MqttSettings(url=broker, topic_prefix=prefix, client_id=client_id, protocol=protocol,
                            username=username, password_file=password_file, ca_file=ca_file, cert_file=cert_file,
                            key_file=key_file, tls_insecure=tls_insecure)
    retention = retention_from(keep, max_size)
    store = open_store(db or default_location())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    recorder = Recorder(settings, store, retention)
    try:
        recorder.start()
        typer.echo(f"recording: {settings.address} -> {store.location}  (Ctrl-C to stop)", err=True)
        if not recorder.wait_connected(CONNECT_WAIT_S):
            typer.echo(f"broker {settings.address} is not reachable yet; retrying (the broker keeps the "
                       "fleet's messages for this recorder's session)", err=True)
        while not stop.wait(1.0):
            recorder.wait_connected(0)  # raises when the broker refused us for good
    finally:
        recorder.stop()
        store.close()
