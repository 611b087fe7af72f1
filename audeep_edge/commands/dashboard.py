"""``audeep-edge dashboard``: serve the live web dashboard for every device on a broker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import typer

from audeep_edge.commands.broker_options import broker_option, listen_option, prefix_option, protocol_option
from audeep_edge.commands.record import db_option, keep_option, max_size_option


def register(app: typer.Typer) -> None:
    """Register ``dashboard`` on the main app."""
    app.command("dashboard")(dashboard)


def dashboard(
    broker: str = broker_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on; anything but loopback needs --token."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port (0 picks a free one)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AUDEEP_DASHBOARD_TOKEN",
                                        help="Secret every request must carry (also read from $AUDEEP_DASHBOARD_TOKEN)."),
    prefix: str = prefix_option(),
    history: float = typer.Option(300.0, "--history", min=10.0, help="Seconds of live timeline kept per device."),
    db: Optional[str] = db_option(),
    record: bool = typer.Option(True, "--record/--no-record", help="Record into --db here (--no-record: only "
                                "read it, another `audeep-edge record` fills it). --db none: live view only."),
    keep: Optional[str] = keep_option(),
    max_size: Optional[str] = max_size_option(),
    protocol: str = protocol_option(),
    username: Optional[str] = listen_option("username"),
    password_file: Optional[Path] = listen_option("password_file"),
    ca_file: Optional[Path] = listen_option("ca_file"),
    cert_file: Optional[Path] = listen_option("cert_file"),
    key_file: Optional[Path] = listen_option("key_file"),
    tls_insecure: bool = listen_option("tls_insecure", False),
) -> None:
    """Serve a web page of every device under PREFIX/+/… (live, and its history from --db) until Ctrl-C."""
    from audeep_edge.dashboard import DashboardServer
    from audeep_edge.dashboard.device_state import HistoryLimits
    from audeep_edge.mqtt.settings import MqttSettings
    from audeep_edge.recorder.retention import retention_from
    from audeep_edge.recorder.store import default_location

    settings = MqttSettings(url=broker, topic_prefix=prefix, protocol=protocol, username=username,
                            password_file=password_file, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
                            tls_insecure=tls_insecure)
    location = None if db == "none" else db or default_location()
    server = DashboardServer(settings, host=host, port=port, token=token,
                             limits=HistoryLimits(history_s=history, max_windows=int(history * 4)),
                             db=location, record=record, retention=retention_from(keep, max_size))
    url = server.start()
    typer.echo(f"dashboard: {url}  (broker {server.broker}; history {location or 'off'}; Ctrl-C to stop)")
    try:
        threading.Event().wait()
    finally:
        server.stop()
