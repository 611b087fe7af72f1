"""``audeep-edge doctor``: can this machine run ``listen`` with these settings?

Every check goes through the code ``listen`` itself runs: the settings come from
:func:`~audeep_edge.config.build_config`, the bundle from ``find_bundle``, the model and its delegate from
:class:`~audeep_edge.encoder.Encoder`, the microphone from :class:`~audeep_edge.sources.MicrophoneSource`, so a
check that passes here does not fail there for another reason.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from audeep_edge import __version__
from audeep_edge.bundle import Bundle
from audeep_edge.config import ListenConfig, build_config
from audeep_edge.deploy import board
from audeep_edge.deploy.report import FAIL, OK, WARN, Check
from audeep_edge.errors import AudioError, ConfigError, ModelError

DISK_FAIL_MB, DISK_WARN_MB = 50, 500
TEMP_WARN_C, TEMP_FAIL_C = 80.0, 85.0  # a Pi 4/5 starts to throttle at 80 degrees C and caps hard at 85
TIMED_WINDOWS = 5


@dataclass(frozen=True)
class DoctorOptions:
    """What ``doctor`` was asked to check: a config file and/or ``--bundle`` / ``--broker`` overrides."""

    config_file: Path | None = None
    bundle: Path | None = None
    broker: str | None = None
    broker_timeout: float = 3.0


def run_doctor(options: DoctorOptions) -> list[Check]:
    """Run every check; never raises for a problem it can report."""
    cfg, config_check = _settings(options)
    checks = [system_check(), cpu_check(), config_check, interpreter_check()]
    bundle, bundle_check = find_bundle_check(cfg)
    checks.append(bundle_check)
    if bundle is not None:
        checks.append(model_check(cfg, bundle))
    checks.append(delegate_check(cfg, bundle))
    checks += audio_checks(cfg, bundle, mic_required=options.config_file is not None and cfg.source == "mic")
    checks.append(broker_check(cfg, options.broker_timeout))
    checks.append(disk_check(cfg, bundle))
    checks += board_checks()
    return checks


def _settings(options: DoctorOptions) -> tuple[ListenConfig, Check]:
    overrides = {"bundle": options.bundle, "broker": options.broker}
    try:
        cfg = build_config(options.config_file, overrides)
    except ConfigError as exc:
        return build_config(None, overrides), Check("config", FAIL, str(exc))
    if options.config_file is None:
        return cfg, Check("config", OK, "no --config: listen's defaults")
    cpus = os.cpu_count() or 1
    status = WARN if cfg.threads > cpus else OK
    return cfg, Check("config", status, f"{options.config_file}: source {cfg.source}, {cfg.threads} thread(s)"
                                        f"{f' on {cpus} CPUs' if status == WARN else ''}, delegate {cfg.delegate}")


def system_check() -> Check:
    """Version, Python, OS, architecture and board; WARN for a 32-bit Python (no ai-edge-litert wheel)."""
    model = board.board_model()
    bits = struct.calcsize("P") * 8
    detail = (f"audeep-edge {__version__}, Python {platform.python_version()} ({bits}-bit), {platform.system()} "
              f"{platform.machine()}, {os.cpu_count()} CPUs{f', {model}' if model else ''}")
    if bits == 32:
        return Check("system", WARN, detail + "; ai-edge-litert needs a 64-bit OS (Pi OS Bookworm 64-bit)")
    return Check("system", OK, detail)


def cpu_check() -> Check:
    """The CPU's features and whether models may run on LiteRT's CompiledModel here, and why."""
    from audeep_edge.encoder.cpu import this_cpu_choice

    cpu, choice = this_cpu_choice()
    features = " ".join(cpu.features) or "unknown"
    return Check("cpu", OK, f"{cpu.machine} features{f' ({cpu.source})' if cpu.source else ''}: {features}; "
                            f"{choice.reason}")


def interpreter_check() -> Check:
    """The interpreter package ``listen`` would use."""
    from audeep_edge.encoder import interpreter_backend

    try:
        backend = interpreter_backend()
    except ModelError as exc:
        return Check("interpreter", FAIL, str(exc))
    detail = f"{backend.name} {backend.version}"
    if backend.name == "ai-edge-litert":
        return Check("interpreter", OK, detail)
    return Check("interpreter", WARN, f"{detail}: slower or older than ai-edge-litert; `pip install ai-edge-litert`")


def find_bundle_check(cfg: ListenConfig) -> tuple[Bundle | None, Check]:
    """The bundle ``listen`` would load, with its sha256 verified and its precision as configured."""
    from audeep_edge.pipeline.assemble import find_bundle

    try:
        bundle = find_bundle(cfg.bundle, cfg.precision)
    except ModelError as exc:
        return None, Check("bundle", FAIL, str(exc))
    size_mb = bundle.model_path.stat().st_size / 1e6
    _, frames, bins = bundle.input_shape
    classes = f", {len(bundle.labels)} classes" if bundle.labels else ", no classifier head"
    return bundle, Check("bundle", OK, f"{bundle.name} ({bundle.precision}, {size_mb:.2f} MB, sha256 "
                                       f"{bundle.manifest['sha256'][:12]}... matches) at {bundle.path}: "
                                       f"{bundle.geometry.fs} Hz, {frames}x{bins} window = "
                                       f"{bundle.window_seconds:.2f} s ({bundle.normalization}), "
                                       f"embedding {bundle.embedding_size}{classes}")


def model_check(cfg: ListenConfig, bundle: Bundle) -> Check:
    """Load the model as ``listen`` does (threads, delegate, fallback) and time a few windows."""
    from audeep_edge.encoder import Encoder

    try:
        encoder = Encoder(bundle.model_path, threads=cfg.threads, delegate=cfg.delegate,
                          require_delegate=cfg.require_delegate)
    except ModelError as exc:
        return Check("model", FAIL, str(exc))
    if encoder.input_shape != bundle.input_shape:
        return Check("model", FAIL, f"{bundle.model_path} takes {encoder.input_shape} but bundle.json says "
                                    f"{bundle.input_shape}; re-export the bundle")
    if encoder.has_probabilities != bool(bundle.labels):
        return Check("model", FAIL, f"{bundle.model_path} and bundle.json disagree on the classifier head "
                                    f"({len(bundle.labels)} labels); re-export the bundle")
    window = np.zeros(bundle.input_shape[1:], dtype=np.float32)
    encoder(window)  # the first call allocates
    times = []
    for _ in range(TIMED_WINDOWS):
        start = time.perf_counter()
        encoder(window)
        times.append(1000 * (time.perf_counter() - start))
    return Check("model", OK, f"loads on {encoder.backend}, {cfg.threads} thread(s), delegate {encoder.delegate}; "
                              f"one window in {float(np.median(times)):.1f} ms (median of {TIMED_WINDOWS})")


def delegate_check(cfg: ListenConfig, bundle: Bundle | None) -> Check:
    """Edge TPU: Coral hardware on USB/PCIe and whether ``libedgetpu`` loads through ``Encoder``'s loader."""
    from audeep_edge.encoder import Encoder

    devices = board.coral_devices()
    found = "; ".join(d.description for d in devices) or "no Coral device found"
    wanted = cfg.delegate == "edgetpu"
    if bundle is None:
        return Check("edgetpu", WARN if wanted else OK, f"{found}; delegate not tried (needs a loadable bundle)")
    try:
        Encoder(bundle.model_path, threads=cfg.threads, delegate="edgetpu", require_delegate=True)
    except ModelError as exc:
        busy = " (a Coral serves one process: stop the audeep-edge service first)" if devices else ""
        if not wanted:
            return Check("edgetpu", OK, f"not available (the Edge TPU runtime does not load; {found}); "
                                        "not used by this config")
        fatal = cfg.require_delegate or bundle.precision == "edgetpu"
        consequence = "listen cannot start" if fatal else "listen falls back to the CPU"
        return Check("edgetpu", FAIL if fatal else WARN, f"{exc}{busy}; {consequence}")
    slow = [d for d in devices if d.slow_usb]
    if slow:
        return Check("edgetpu", WARN, f"delegate loads; {found}: a USB 2 port slows every transfer, use a "
                                      "USB 3 (blue) port")
    return Check("edgetpu", OK, f"delegate loads ({found})" + ("" if wanted else "; not used by this config"))


def audio_checks(cfg: ListenConfig, bundle: Bundle | None, *, mic_required: bool,
                 backend: SimpleNamespace | None = None) -> list[Check]:
    """Every input device with its default rate, then (for a microphone config) the capture ``listen`` would
    open. Missing audio is a FAIL only when the config captures from a microphone.

    ``backend`` : an object like :func:`~audeep_edge.sources.mic.audio_backend`'s (default: that one).
    """
    from audeep_edge.sources import MicrophoneSource
    from audeep_edge.sources.mic import audio_backend

    missing = FAIL if mic_required else WARN
    try:
        backend = backend or audio_backend()
    except AudioError as exc:
        return [Check("audio", missing, str(exc))]
    try:
        devices = backend.devices()
    except backend.errors as exc:
        return [Check("audio", missing, f"{backend.name} cannot list input devices: {exc}")]
    checks = [Check("audio input", OK, f"#{d.index} {d.name}: {d.channels} ch, default {d.default_rate} Hz"
                                       f"{' (default input)' if d.default else ''}") for d in devices]
    if not devices:
        checks.append(Check("audio input", missing, "no input device found (plug in a USB microphone; "
                                                    "--file and --stdin work without one)"))
        return checks
    if cfg.source != "mic":
        return checks
    stereo = bundle is not None and bundle.frontend.channels != "MEAN"
    try:
        source = MicrophoneSource(cfg.device, cfg.rate, cfg.channels or (2 if stereo else 1),
                                  preferred_rate=bundle.geometry.fs if bundle else None, backend=backend)
    except AudioError as exc:
        return checks + [Check("capture", FAIL if mic_required else WARN, str(exc))]
    resampled = f", resampled to {bundle.geometry.fs} Hz" if bundle and source.sample_rate != bundle.geometry.fs else ""
    return checks + [Check("capture", OK, f"{source.name} at {source.sample_rate} Hz x {source.channels} ch"
                                          f"{resampled}")]


def broker_check(cfg: ListenConfig, timeout: float) -> Check:
    """The configured broker answers an MQTT CONNECT (or the embedded broker can start)."""
    if cfg.broker == "none":
        return Check("broker", OK, "MQTT disabled (broker = none)")
    if cfg.broker is None:
        if importlib.util.find_spec("amqtt") is None:
            return Check("broker", FAIL, "no broker configured and the embedded one needs amqtt; "
                                         "`pip install amqtt` or set broker = mqtt://HOST")
        return Check("broker", OK, "no broker configured: listen starts an embedded one on 127.0.0.1")
    from audeep_edge.deploy.broker_probe import probe_broker

    try:
        result = probe_broker(cfg.mqtt_settings(), timeout)
    except ConfigError as exc:
        return Check("broker", FAIL, str(exc))
    return Check("broker", OK if result.ok else FAIL, result.message)


def disk_check(cfg: ListenConfig, bundle: Bundle | None) -> Check:
    """Free space where ``listen`` writes: the MQTT spool (``queue-dir``), else the bundle's directory."""
    place = cfg.queue_dir or (bundle.path if bundle else Path.cwd())
    place = next((p for p in (place, *place.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(place)
    free_mb = usage.free / 2**20
    status = FAIL if free_mb < DISK_FAIL_MB else WARN if free_mb < DISK_WARN_MB else OK
    return Check("disk", status, f"{free_mb / 1024:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {place}")


def board_checks() -> list[Check]:
    """CPU temperature and, on a Raspberry Pi, throttling; nothing where the machine reports neither."""
    checks = []
    celsius = board.cpu_temperature_c()
    if celsius is not None:
        status = FAIL if celsius >= TEMP_FAIL_C else WARN if celsius >= TEMP_WARN_C else OK
        advice = "; add a heatsink or fan" if status != OK else ""
        checks.append(Check("temperature", status, f"CPU at {celsius:.1f} C{advice}"))
    try:
        throttling = board.read_throttled()
    except OSError as exc:
        return checks + [Check("throttling", WARN, str(exc))]
    if throttling is not None:
        checks.append(throttling_check(throttling))
    return checks


def throttling_check(throttling: board.Throttling) -> Check:
    """FAIL for under-voltage now (USB microphones and Corals drop out), WARN for any other throttling."""
    raw = f"(get_throttled = {throttling.raw:#x})"
    if "under-voltage" in throttling.now:
        return Check("throttling", FAIL, f"under-voltage now {raw}; use the official power supply")
    if throttling.now:
        return Check("throttling", WARN, f"now: {', '.join(throttling.now)} {raw}; cool the board")
    if throttling.since_boot:
        return Check("throttling", WARN, f"since boot: {', '.join(throttling.since_boot)} {raw}")
    return Check("throttling", OK, f"none since boot {raw}")

