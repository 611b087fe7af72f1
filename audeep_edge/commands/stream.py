"""``audeep-edge listen``, ``audeep-edge bench`` and ``audeep-edge config check``.

``listen`` wires source -> pipeline -> sinks and runs until the audio ends, ``--max-windows`` or
SIGINT/SIGTERM; start order: sinks (embedded broker first, so the MQTT sink connects at once; the dashboard before
the MQTT sink, whose Home Assistant device links to it), then the source, so nothing is captured before it can be
published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional

import typer

from audeep_edge.config import ListenConfig, build_config, flag, group_of, help_for

if TYPE_CHECKING:
    from audeep_edge.sinks.homeassistant import Entities

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0  # how long listen waits for the broker before it starts (buffering if it is away)


def register(app: typer.Typer) -> None:
    """Register ``listen``, ``bench`` and ``config check``."""
    app.command("listen")(listen)
    app.command("bench")(bench)
    config_app = typer.Typer(help="Runtime config files (TOML/YAML, keys = listen's flag names).",
                             no_args_is_help=True)
    config_app.command("check")(config_check)
    app.add_typer(config_app, name="config")


def _help(name: str) -> str:
    """The setting's help with its choices and, unless the help says it, its default, as typer shows them for
    ordinary options (the option's own default is None, so that a config file can set it). The bracket is
    escaped: the help renderer reads ``[...]`` as markup."""
    setting = next(f for f in dataclasses.fields(ListenConfig) if f.name == name)
    text = help_for(name)
    if setting.metadata["choices"]:
        text += f" Choices: {', '.join(map(str, setting.metadata['choices']))}."
    if "default" not in text.lower():
        default = setting.default
        shown = ("on" if default else "off") if isinstance(default, bool) else "not set" if default is None else default
        text += f" \\[default: {shown}]"
    return text


def _opt(name: str, *aliases: str) -> typer.models.OptionInfo:
    """A listen option whose flag, help and (file-or-default) value come from audeep_edge.config. Paths are not
    checked here (click would print a usage box): the parts that open them say what is wrong in one line."""
    return typer.Option(None, flag(name), *aliases, help=_help(name), show_default=False,
                        rich_help_panel=group_of(name), readable=False)


def listen(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML/YAML file with the same keys as "
                                          "these flags; flags given here override it."),
    list_devices: bool = typer.Option(False, "--list-devices", help="List audio input devices and exit."),
    mic: Optional[bool] = _opt("mic"),
    file: Optional[Path] = _opt("file"),
    stdin: Optional[bool] = _opt("stdin"),
    device: Optional[str] = _opt("device"),
    realtime: Optional[bool] = _opt("realtime"),
    format: Optional[str] = _opt("format"),
    rate: Optional[int] = _opt("rate"),
    channels: Optional[int] = _opt("channels"),
    block: Optional[float] = _opt("block"),
    queue_blocks: Optional[int] = _opt("queue_blocks"),
    bundle: Optional[Path] = _opt("bundle", "-b"),
    precision: Optional[str] = _opt("precision"),
    threads: Optional[int] = _opt("threads"),
    delegate: Optional[str] = _opt("delegate"),
    require_delegate: Optional[bool] = _opt("require_delegate"),
    hop: Optional[float] = _opt("hop"),
    top_k: Optional[int] = _opt("top_k"),
    smoothing: Optional[str] = _opt("smoothing"),
    smoothing_windows: Optional[int] = _opt("smoothing_windows"),
    embeddings: Optional[str] = _opt("embeddings"),
    embedding_encoding: Optional[str] = _opt("embedding_encoding"),
    novelty_threshold: Optional[float] = _opt("novelty_threshold"),
    novelty_release: Optional[float] = _opt("novelty_release"),
    novelty_min_duration: Optional[float] = _opt("novelty_min_duration"),
    health_interval: Optional[float] = _opt("health_interval"),
    max_windows: Optional[int] = _opt("max_windows"),
    broker: Optional[str] = _opt("broker"),
    jsonl: Optional[str] = _opt("jsonl"),
    device_id: Optional[str] = _opt("device_id"),
    protocol: Optional[str] = _opt("protocol"),
    qos: Optional[int] = _opt("qos"),
    topic_prefix: Optional[str] = _opt("topic_prefix"),
    client_id: Optional[str] = _opt("client_id"),
    keepalive: Optional[int] = _opt("keepalive"),
    ca_file: Optional[Path] = _opt("ca_file"),
    cert_file: Optional[Path] = _opt("cert_file"),
    key_file: Optional[Path] = _opt("key_file"),
    tls_insecure: Optional[bool] = _opt("tls_insecure"),
    username: Optional[str] = _opt("username"),
    password_file: Optional[Path] = _opt("password_file"),
    queue_max: Optional[int] = _opt("queue_max"),
    queue_dir: Optional[Path] = _opt("queue_dir"),
    homeassistant: Optional[bool] = _opt("homeassistant"),
    discovery_prefix: Optional[str] = _opt("discovery_prefix"),
    dashboard: Optional[bool] = _opt("dashboard"),
    dashboard_host: Optional[str] = _opt("dashboard_host"),
    dashboard_port: Optional[int] = _opt("dashboard_port"),
    dashboard_token: Optional[str] = typer.Option(None, "--dashboard-token", envvar="AUDEEP_DASHBOARD_TOKEN",
                                                  help=_help("dashboard_token"), show_default=False,
                                                  rich_help_panel=group_of("dashboard_token")),
    dashboard_url: Optional[str] = _opt("dashboard_url"),
    watch_labels: Optional[str] = _opt("watch_labels"),
    watch_min_score: Optional[float] = _opt("watch_min_score"),
    clips: Optional[Path] = _opt("clips"),
    clip_format: Optional[str] = _opt("clip_format"),
    clip_pre_roll: Optional[float] = _opt("clip_pre_roll"),
    clip_post_roll: Optional[float] = _opt("clip_post_roll"),
    clips_max_mb: Optional[float] = _opt("clips_max_mb"),
    clips_max_age: Optional[float] = _opt("clips_max_age"),
) -> None:
    """Stream audio through a model bundle and publish every window (MQTT, JSONL) until the audio ends or Ctrl-C.

    Without --broker an embedded MQTT broker starts on 127.0.0.1; without a source the microphone is used.
    """
    overrides = {name: value for name, value in locals().items() if name not in ("config", "list_devices")}
    if list_devices:
        _print_devices()
        return
    run_listen(build_config(config, overrides))


def _print_devices() -> None:
    from audeep_edge.sources import list_input_devices

    devices = list_input_devices()
    if not devices:
        typer.echo("no audio input devices found (plug in a microphone; --file and --stdin need none)")
    for d in devices:
        typer.echo(f"{'*' if d.default else ' '} {d.index:3d}  {d.name}  ({d.channels} ch, {d.default_rate} Hz)")


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM end the run cleanly (flush, ``offline``, exit 0) instead of raising."""
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def run_listen(cfg: ListenConfig) -> None:
    """Run ``listen`` with a validated :class:`~audeep_edge.config.ListenConfig`."""
    from audeep_edge.errors import DeliveryError
    from audeep_edge.head.novelty import NoveltyConfig
    from audeep_edge.pipeline.assemble import (build_pipeline, check_watched, effective_hop, find_bundle,
                                               info_payload, open_adaptation, open_encoder, open_source)
    from audeep_edge.sinks.homeassistant import Entities

    bundle = find_bundle(cfg.bundle, cfg.precision)
    source = open_source(cfg, bundle)  # opens nothing yet: capture starts when the pipeline runs
    encoder = open_encoder(cfg, bundle)
    adaptation = open_adaptation(cfg, bundle)
    info = info_payload(bundle, cfg.device_id, effective_hop(cfg, bundle), adaptation.labels(bundle.labels),
                        NoveltyConfig(**cfg.novelty_options()).threshold if adaptation.has_baseline else None)
    log.info("bundle %s (%s): %.2f s windows every %.2f s, source %s", bundle.name, bundle.precision,
             info["window_seconds"], info["hop_seconds"], source.name)
    check_watched(cfg, info["labels"])
    if cfg.clips is not None and not (cfg.watched or adaptation.has_baseline):
        log.warning("--clips %s: no clip will be saved without --watch-labels or a novelty baseline "
                    "(`audeep-edge baseline fit`)", cfg.clips)
    entities = Entities(novelty=adaptation.has_baseline, watch=cfg.watched, watch_min_score=cfg.watch_min_score,
                        configuration_url=cfg.dashboard_url)
    stop = threading.Event()
    with _stop_on_signals(stop), contextlib.ExitStack() as stack:  # a signal while starting: stop at once
        sinks = _open_sinks(cfg, info, stack, entities)
        summary = build_pipeline(cfg, bundle, encoder, source, sinks, adaptation).run(stop)
    log.info("%d windows from %.1f s of audio; RTF %.4f, latency p50 %.1f ms, p99 %.1f ms; %d overruns",
             summary.windows, summary.audio_seconds, summary.rtf, *_percentiles_ms(summary.latencies),
             summary.overruns)
    failures = [sink.failure for sink in sinks if getattr(sink, "failure", None)]  # set when the sinks closed
    if failures:  # never exit 0 over results that did not get where they were sent
        raise DeliveryError("; ".join(failures))


def _percentiles_ms(latencies: list[float]) -> tuple[float, float]:
    from audeep_edge.pipeline.health import percentile_ms

    return percentile_ms(latencies, 50) or 0.0, percentile_ms(latencies, 99) or 0.0


def _open_sinks(cfg: ListenConfig, info: dict, stack: contextlib.ExitStack, entities: Entities) -> list:
    """JSONL, the live table (stdout a terminal, without -q or --jsonl -), the dashboard and MQTT (with an embedded
    broker when no --broker is given); closed by ``stack`` in reverse order, so the MQTT sink flushes and says
    ``offline`` before the embedded broker stops. ``entities``: Home Assistant's optional entities."""
    from audeep_edge.log import console_quiet

    sinks = []
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
        typer.echo(f"embedded MQTT broker on {embedded.url} (watch: mosquitto_sub -h {embedded.host} -p "
                   f"{embedded.port} -u {embedded.username} -P \"$(cat {embedded.password_file})\" "
                   f"-t '{cfg.mqtt_settings().topic_prefix}/#' -v)", err=True)
    if cfg.dashboard:  # before the MQTT sink: its address is the Home Assistant device's link
        from audeep_edge.dashboard import DashboardServer

        server = DashboardServer(url, host=cfg.dashboard_host, port=cfg.dashboard_port, token=cfg.dashboard_token)
        address = server.start()
        typer.echo(f"dashboard: {address}", err=True)
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


def config_check(
    file: Path = typer.Argument(..., help="Config file (.toml, .yaml or .yml)."),
    bundle_path: Optional[Path] = typer.Option(None, "--bundle", "-b", help="Check against this bundle instead of "
                                               "the file's (e.g. a profile whose bundle lives on the device)."),
) -> None:
    """Validate a listen config file: keys, values (MQTT ones too), the bundle it names, its model and the
    adaptation files, and that the watched labels are labels of that bundle."""
    from audeep_edge.encoder import Encoder
    from audeep_edge.pipeline.assemble import check_watched, effective_hop, find_bundle, open_adaptation

    cfg = build_config(file, {"bundle": bundle_path})
    bundle = find_bundle(cfg.bundle, cfg.precision)
    if bundle.precision != "edgetpu":  # the model, on this machine's CPU (an Edge TPU model runs on a Coral only)
        bundle.check_model(Encoder(bundle.model_path))
    adaptation = open_adaptation(cfg, bundle)
    check_watched(cfg, adaptation.labels(bundle.labels))
    broker = cfg.broker or "embedded broker on 127.0.0.1"
    hop, wanted = effective_hop(cfg, bundle), cfg.hop or bundle.hop_seconds
    rounded = f" (hop = {wanted:g} rounded to whole frames of {bundle.geometry.hop / bundle.geometry.fs:g} s)" \
        if abs(hop - wanted) > 1e-6 else ""
    typer.echo(f"{file}: ok (source {cfg.source}, bundle {bundle.name} {bundle.precision}, hop {hop:.6g} s{rounded}, "
               f"{cfg.threads} thread(s), delegate {cfg.delegate}, broker {broker}, device id {cfg.device_id})")


def bench(
    bundles: List[Path] = typer.Option(..., "--bundle", "-b", help="Bundle to measure; repeat for several."),
    seconds: float = typer.Option(60.0, "--seconds", min=1.0, help="Seconds of audio streamed per bundle."),
    file: Optional[Path] = typer.Option(None, "--file", help="Audio to stream, looped to --seconds "
                                        "(default: the bundled demo audio)."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help=help_for("threads")),
    delegate: str = typer.Option("auto", "--delegate", help=help_for("delegate")),
    hop: Optional[float] = typer.Option(None, "--hop", help=help_for("hop")),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also time the naive baseline "
                                  "(scipy spectrogram of the whole window per hop + Keras predict; needs the "
                                  "\\[train] extra)."),
    baseline_model: Optional[Path] = typer.Option(None, "--baseline-model", help="Keras model (.keras) or "
                                                  "training run directory of the float model (default: the "
                                                  "bundle's training run)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per bundle instead of a table."),
) -> None:
    """Stream N seconds of audio through the full runtime pipeline per bundle (front end -> encoder -> head ->
    JSONL sink to /dev/null) and report RTF, window latency p50/p99, CPU % and peak RSS, each in a fresh
    process without TensorFlow; the naive baseline runs in its own process, side by side."""
    from audeep_edge.commands.bench_worker import print_results, run_bench

    results = run_bench(bundles, seconds=seconds, audio=file, threads=threads, delegate=delegate, hop=hop,
                        baseline=baseline, baseline_model=baseline_model)
    print_results(results, as_json=as_json)
