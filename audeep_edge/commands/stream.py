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
import threading
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from audeep_edge.config import ListenConfig, build_config, flag, group_of, help_for

log = logging.getLogger(__name__)


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
    dashboard_db: Optional[str] = _opt("dashboard_db"),
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
    from audeep_edge.pipeline.assemble import assemble, check_watched
    from audeep_edge.pipeline.sinks import open_sinks

    run = assemble(cfg)
    source = run.open_source()  # opens nothing yet: capture starts when the pipeline runs
    info, baseline = run.info(), run.adaptation.has_baseline
    log.info("bundle %s (%s): %.2f s windows every %.2f s, source %s", run.bundle.name, run.bundle.precision,
             info["window_seconds"], info["hop_seconds"], source.name)
    check_watched(cfg, info["labels"])
    if cfg.clips is not None and not (cfg.watched or baseline):
        log.warning("--clips %s: no clip will be saved without --watch-labels or a novelty baseline "
                    "(`audeep-edge baseline fit`)", cfg.clips)
    stop = threading.Event()
    with _stop_on_signals(stop), contextlib.ExitStack() as stack:  # a signal while starting: stop at once
        sinks = open_sinks(cfg, info, stack, novelty=baseline)
        summary = run.pipeline(source, sinks).run(stop)
    log.info("%d windows from %.1f s of audio; RTF %.4f, latency p50 %.1f ms, p99 %.1f ms; %d overruns",
             summary.windows, summary.audio_seconds, summary.rtf, *_percentiles_ms(summary.latencies),
             summary.overruns)
    failures = [sink.failure for sink in sinks if getattr(sink, "failure", None)]  # set when the sinks closed
    if failures:  # never exit 0 over results that did not get where they were sent
        raise DeliveryError("; ".join(failures))


def _percentiles_ms(latencies: list[float]) -> tuple[float, float]:
    from audeep_edge.pipeline.health import percentile_ms

    return percentile_ms(latencies, 50) or 0.0, percentile_ms(latencies, 99) or 0.0


def config_check(
    file: Path = typer.Argument(..., help="Config file (.toml, .yaml or .yml)."),
    bundle_path: Optional[Path] = typer.Option(None, "--bundle", "-b", help="Check against this bundle instead of "
                                               "the file's (e.g. a profile whose bundle lives on the device)."),
) -> None:
    """Validate a listen config file: keys, values (MQTT ones too), the bundle it names, its model and the
    adaptation files, and that the watched labels are labels of that bundle."""
    from audeep_edge.encoder import Encoder
    from audeep_edge.pipeline.assemble import check_watched, find_bundle, open_adaptation

    cfg = build_config(file, {"bundle": bundle_path})
    bundle = find_bundle(cfg.bundle, cfg.precision)
    if bundle.precision != "edgetpu":  # the model, on this machine's CPU (an Edge TPU model runs on a Coral only)
        bundle.check_model(Encoder(bundle.model_path))
    check_watched(cfg, open_adaptation(bundle, cfg.novelty()).labels(bundle.labels))
    broker = cfg.broker or "embedded broker on 127.0.0.1"
    hop = bundle.window_hop(cfg.hop)
    rounded = f" (hop = {hop.wanted:g} rounded to whole frames of {bundle.geometry.seconds(1):g} s)" \
        if hop.rounded else ""
    typer.echo(f"{file}: ok (source {cfg.source}, bundle {bundle.name} {bundle.precision}, hop {hop.seconds:.6g} s"
               f"{rounded}, {cfg.threads} thread(s), delegate {cfg.delegate}, broker {broker}, "
               f"device id {cfg.device_id})")


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
