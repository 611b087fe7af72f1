"""Where ``listen`` sends its payloads: JSONL, the live table, the dashboard and MQTT (with an embedded broker
when no ``--broker`` is given), from a :class:`~audeep_edge.config.ListenConfig`."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from typing import TYPE_CHECKING

from audeep_edge.sinks.base import Sink

if TYPE_CHECKING:
    from audeep_edge.config import ListenConfig

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0  # how long listen waits for the broker before it starts (buffering if it is away)
DASHBOARD_KEEP_DAYS = 30  # history --dashboard-db keeps (`audeep-edge record --keep` sets it for a recorder)


def _say(text: str) -> None:
    """A line for the person at the terminal (stderr: stdout may carry ``--jsonl -``)."""
    print(text, file=sys.stderr, flush=True)


def open_sinks(cfg: ListenConfig, info: dict, stack: contextlib.ExitStack, *, novelty: bool) -> list[Sink]:
    """JSONL, the live table (stdout a terminal, without -q or --jsonl -), the dashboard and MQTT (with an embedded
    broker when no --broker is given) for the ``info`` payload; closed by ``stack`` in reverse order, so the MQTT
    sink flushes and says ``offline`` before the embedded broker stops. ``novelty``: a novelty baseline is in use
    (Home Assistant gets its entities).

    Raises
    ------
    BrokerError : refused credentials, or (``--file``) a broker that does not answer.
    """
    from audeep_edge.log import console_quiet
    from audeep_edge.sinks.homeassistant import Entities

    entities = Entities(novelty=novelty, watch=cfg.watched, watch_min_score=cfg.watch_min_score,
                        configuration_url=cfg.dashboard_url)
    sinks: list[Sink] = []
    if cfg.jsonl is not None:
        from audeep_edge.sinks.jsonl import JsonlSink

        sinks.append(JsonlSink(cfg.jsonl, info))
        stack.callback(sinks[-1].close)
    if cfg.jsonl != "-" and sys.stdout.isatty() and not console_quiet():
        from audeep_edge.sinks.terminal import TerminalSink

        sinks.append(TerminalSink(info))
    if cfg.broker == "none":
        return sinks
    from audeep_edge.errors import BrokerError
    from audeep_edge.sinks.mqtt import MqttSink
    from audeep_edge.sinks.spool import default_spool_dir

    url = cfg.broker
    if url is None:
        from audeep_edge.sinks.broker import start_embedded_broker

        embedded = start_embedded_broker("127.0.0.1")
        stack.callback(embedded.stop)
        url = embedded.client_url  # only this process's clients know the generated password
        _say(f"embedded MQTT broker on {embedded.url} (watch: mosquitto_sub -h {embedded.host} -p "
             f"{embedded.port} -u {embedded.username} -P \"$(cat {embedded.password_file})\" "
             f"-t '{cfg.mqtt_settings().topic_prefix}/#' -v)")
    if cfg.dashboard:  # before the MQTT sink: its address is the Home Assistant device's link
        from audeep_edge.dashboard import DashboardServer
        from audeep_edge.recorder import Retention
        from audeep_edge.recorder.ingest import default_client_id

        # the recorder's persistent session gets its own id: never listen's --client-id, nor another recorder's
        db = cfg.dashboard_db
        client_id = default_client_id(db, f"listen-{cfg.device_id}") if db else None
        settings = dataclasses.replace(cfg.mqtt_settings(url), client_id=client_id)
        server = DashboardServer(settings, host=cfg.dashboard_host, port=cfg.dashboard_port,
                                 token=cfg.dashboard_token, db=db,
                                 retention=Retention(max_age_s=DASHBOARD_KEEP_DAYS * 86400.0))
        address = server.start()
        _say(f"dashboard: {address}")
        stack.callback(server.stop)
        if entities.configuration_url is None:  # never the token: HA shows the link to every user
            entities = dataclasses.replace(entities, configuration_url=address.split("?")[0])
    settings = cfg.mqtt_settings(url)
    if settings.queue_dir is None:  # a stop while the broker is away keeps what was buffered
        settings = dataclasses.replace(settings, queue_dir=default_spool_dir())
    mqtt_sink = MqttSink(settings, cfg.device_id, info, entities=entities)
    stack.callback(mqtt_sink.close)
    if not mqtt_sink.wait_connected(CONNECT_WAIT_S):  # raises BrokerError for refused credentials
        reason = mqtt_sink.last_error or f"no answer from {settings.address}"
        if cfg.source == "file":  # a finite stream would be analysed for nothing
            raise BrokerError(f"{reason}; check --broker (or use --broker none --jsonl FILE)")
        log.warning("%s; buffering until it is reachable", reason)
    sinks.append(mqtt_sink)
    return sinks
