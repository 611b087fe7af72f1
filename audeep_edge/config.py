"""Runtime configuration of ``audeep-edge listen``: one frozen, validated dataclass; the only home of defaults.

A config file (TOML, or YAML when PyYAML is installed) uses the CLI flag names as keys, without the dashes
in front::

    # kitchen.toml
    mic = true
    device = "USB"
    bundle = "general-int8.bundle"   # relative paths are relative to this file
    threads = 1
    broker = "mqtt://192.168.1.10"
    device-id = "kitchen"
    smoothing-windows = 5

Unknown keys are errors; flags given on the command line override the file. ``audeep-edge config check FILE``
validates a file without starting anything.

Why one module of ~380 lines: the ~50 settings are the only home of defaults, help texts and bounds, and
the flag names, the file loader and ``check_value`` are all derived from the same ``fields(ListenConfig)``;
split apart, each half would have to repeat the other's table.
"""

from __future__ import annotations

import difflib
import math
import re
import socket
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from audeep_edge.bundle import PRECISIONS
from audeep_edge.encoder.interpreter import DELEGATES
from audeep_edge.errors import ConfigError
from audeep_edge.head.novelty import NoveltyConfig
from audeep_edge.head.smoothing import SMOOTHING_MODES
from audeep_edge.mqtt.settings import MqttSettings, check_device_id
from audeep_edge.pipeline.analysis import EMBEDDING_DTYPES, EMBEDDING_ENCODINGS
from audeep_edge.sources.stdin import STDIN_FORMATS

SOURCES = ("mic", "file", "stdin")
SOURCE_SPECIFIC = {"realtime": ("file",), "device": ("mic",), "queue_blocks": ("mic",), "format": ("stdin",),
                   "rate": ("stdin", "mic"), "channels": ("stdin", "mic")}
GROUPS = {"mic": "Source", "bundle": "Model", "top_k": "Output", "broker": "Sinks", "dashboard": "Dashboard",
          "watch_labels": "Events and clips"}
NOVELTY_KEYS = ("novelty_threshold", "novelty_release", "novelty_min_duration")  # -> head.novelty.NoveltyConfig
# Keys handed to MqttSettings (audeep_edge.mqtt.settings), which owns their defaults and checks.
MQTT_KEYS = ("protocol", "qos", "topic_prefix", "client_id", "keepalive", "ca_file", "cert_file", "key_file",
             "tls_insecure", "username", "password_file", "queue_max", "queue_dir", "homeassistant",
             "discovery_prefix")
#: MQTT keys that only a connection uses (TLS files, credentials): not checked with ``--broker none``
CONNECTION_KEYS = ("ca_file", "cert_file", "key_file", "tls_insecure", "username", "password_file")


def _setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
             choices: tuple | None = None, path: bool = False, factory: Any = None) -> Any:
    metadata = {"help": help, "low": low, "high": high, "choices": choices, "path": path}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _default_text(cls: type, name: str) -> str:
    """`` (default X).`` from another module's dataclass, so that default is written down only there."""
    return f" (default {next(f.default for f in fields(cls) if f.name == name)})."


def _mqtt_default(name: str) -> str:
    return _default_text(MqttSettings, name)


def _novelty_default(name: str) -> str:
    return _default_text(NoveltyConfig, name)


def default_device_id() -> str:
    """This machine's host name, reduced to the characters an MQTT topic level and HA object id allow."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-.") or "audeep"
    return name[:64]


@dataclass(frozen=True)
class ListenConfig:
    """Everything ``listen`` needs besides the bundle's own settings. Field ``top_k`` is flag ``--top-k``
    and config key ``top-k``."""

    # -- source (one of mic, file, stdin; mic when none is given)
    mic: bool = _setting(False, "Capture from a microphone (the default source).")
    file: Path | None = _setting(None, "Stream an audio file (WAV, FLAC, OGG, ... at any rate).", path=True)
    stdin: bool = _setting(False, "Read raw interleaved PCM from standard input (see --format, --rate, --channels).")
    device: str | None = _setting(None, "--mic input device: index or part of its name (see --list-devices).")
    realtime: bool = _setting(False, "Pace --file like a live source instead of reading as fast as possible.")
    format: str = _setting("s16le", "--stdin sample format.", choices=tuple(STDIN_FORMATS))
    rate: int | None = _setting(None, "Sample rate of --stdin, or capture rate of --mic, in Hz "
                                "(default: the bundle's rate).", low=1000, high=768000)
    channels: int | None = _setting(None, "Channels of --stdin or --mic (default: 1, or 2 when the bundle "
                                    "mixes LEFT/RIGHT/DIFF).", low=1, high=64)
    block: float = _setting(0.1, "Audio block length in seconds.", low=0.005, high=1.0)
    queue_blocks: int = _setting(64, "Blocks the capture queue holds before it drops (counted as overruns).",
                                 low=1, high=100_000)
    # -- model
    bundle: Path | None = _setting(None, "Model bundle directory, or the name of a bundled model "
                                   "(default: the bundled general-fused-dynamic).", path=True)
    precision: str | None = _setting(None, "Refuse a bundle of another precision.", choices=PRECISIONS)
    threads: int = _setting(1, "Interpreter threads.", low=1, high=64)
    delegate: str = _setting("auto", "auto (xnnpack for WHILE-loop models, none for unrolled int8 ones, where "
                             "XNNPACK costs ~100 MB), none (plain CPU kernels), xnnpack, or edgetpu (Coral; falls "
                             "back to the CPU with a warning when missing).", choices=DELEGATES)
    require_delegate: bool = _setting(False, "Fail instead of falling back to the CPU when the delegate is missing.")
    hop: float | None = _setting(None, "Seconds between window starts (default: the bundle's); rounded to whole "
                                 "spectrogram frames.", low=0.001, high=3600.0)
    # -- per-window output
    top_k: int = _setting(3, "Classes listed in each window's top_k.", low=1, high=1000)
    smoothing: str = _setting("majority", "Smoothed label: majority vote or EMA of probabilities.",
                              choices=SMOOTHING_MODES)
    smoothing_windows: int = _setting(5, "Windows the smoothed label looks back over.", low=1, high=10_000)
    embeddings: str = _setting("off", "Add each window's embedding to its payload.", choices=EMBEDDING_DTYPES)
    embedding_encoding: str = _setting("base64", "Embedding as a JSON list or as base64 of little-endian floats.",
                                       choices=EMBEDDING_ENCODINGS)
    novelty_threshold: float | None = _setting(None, "A 'novel' event starts when the novelty score (needs a "
                                               "baseline: `audeep-edge baseline fit`) stays at or above this"
                                               + _novelty_default("threshold"), low=0.0, high=1.0)
    novelty_release: float | None = _setting(None, "An active 'novel' event ends below this score"
                                             + _novelty_default("release"),
                                             low=0.0, high=1.0)
    novelty_min_duration: float | None = _setting(None, "Seconds the score must stay high before a 'novel' event"
                                                  + _novelty_default("min_duration"), low=0.0, high=86_400.0)
    health_interval: float = _setting(10.0, "Seconds between health messages.", low=0.1, high=86_400.0)
    max_windows: int | None = _setting(None, "Stop after this many windows.", low=1, high=10**12)
    # -- sinks
    broker: str | None = _setting(None, "MQTT broker URL, mqtt://host:port or mqtts://host:port (TLS); 'none' "
                                  "disables MQTT; default: an embedded broker on 127.0.0.1 (1883, or a free port).")
    jsonl: str | None = _setting(None, "Also write every payload as JSON Lines to this file, or '-' for stdout.",
                                 path=True)
    device_id: str = _setting(None, "Second MQTT topic level (default: the host name).", factory=default_device_id)
    protocol: str | None = _setting(None, "MQTT protocol version: 3.1.1 or 5" + _mqtt_default("protocol"))
    qos: int | None = _setting(None, "QoS of window/health/event messages: 0 or 1" + _mqtt_default("qos"))
    topic_prefix: str | None = _setting(None, "First MQTT topic level(s)" + _mqtt_default("topic_prefix"))
    client_id: str | None = _setting(None, "MQTT client id (default audeep-edge-<device-id>).")
    keepalive: int | None = _setting(None, "MQTT keepalive in seconds" + _mqtt_default("keepalive"))
    ca_file: Path | None = _setting(None, "CA certificate (PEM) for an mqtts:// broker.", path=True)
    cert_file: Path | None = _setting(None, "Client certificate (PEM) for an mqtts:// broker.", path=True)
    key_file: Path | None = _setting(None, "Client key (PEM) for --cert-file.", path=True)
    tls_insecure: bool | None = _setting(None, "Skip the broker host name check (the chain is still verified).")
    username: str | None = _setting(None, "MQTT user name.")
    password_file: Path | None = _setting(None, "File whose first line is the MQTT password (else "
                                          "$AUDEEP_MQTT_PASSWORD); never logged.", path=True)
    queue_max: int | None = _setting(None, "Messages buffered while the broker is away; past it the oldest "
                                     "are dropped and counted" + _mqtt_default("queue_max"))
    queue_dir: Path | None = _setting(None, "Directory for an on-disk buffer of undelivered messages.", path=True)
    homeassistant: bool | None = _setting(None, "Publish Home Assistant MQTT discovery.")
    discovery_prefix: str | None = _setting(None, "Home Assistant discovery prefix" + _mqtt_default("discovery_prefix"))
    # -- dashboard
    dashboard: bool = _setting(False, "Also serve the live web dashboard.")
    dashboard_host: str = _setting("127.0.0.1", "Dashboard address; anything but loopback needs --dashboard-token.")
    dashboard_port: int = _setting(8080, "Dashboard TCP port (0: a free one).", low=0, high=65535)
    dashboard_token: str | None = _setting(None, "Secret every dashboard request must carry.")
    dashboard_db: str | None = _setting(None, "Also record the history the dashboard shows (30 days) into this "
                                        "database: a file, sqlite:///path or postgresql://... (default: live view "
                                        "only).")
    dashboard_url: str | None = _setting(None, "Dashboard address shown as the device's link in Home Assistant "
                                         "(default: the one --dashboard serves).")
    # -- events and clips
    watch_labels: str | None = _setting(None, "Comma-separated labels to watch, e.g. 'Dog bark,Baby cry': each gets "
                                        "a Home Assistant binary sensor and, with --clips, a clip when a window's "
                                        "probability of it reaches --watch-min-score.")
    watch_min_score: float = _setting(0.7, "Probability at which a window counts as a watched label.",
                                      low=0.01, high=1.0)
    clips: Path | None = _setting(None, "Save a short audio clip of each novel sound and watched label in this "
                                  "directory and publish it (clips may contain speech: off unless set).", path=True)
    clip_format: str = _setting("ogg", "Clip file format (OGG Vorbis or FLAC).", choices=("ogg", "flac"))
    clip_pre_roll: float = _setting(2.0, "Seconds of audio kept before the triggering window.", low=0.0, high=30.0)
    clip_post_roll: float = _setting(2.0, "Seconds of audio kept after the triggering window.", low=0.0, high=30.0)
    clips_max_mb: float = _setting(100.0, "Disk quota of --clips in MB; the oldest clips are deleted first.",
                                   low=0.1, high=1_000_000.0)
    clips_max_age: float = _setting(7.0, "Days a clip is kept.", low=0.001, high=36_500.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))
        sources = [name for name in SOURCES if getattr(self, name)]
        if len(sources) > 1:
            raise ConfigError(f"choose one source, got {' and '.join('--' + s for s in sources)}")
        for name, allowed in SOURCE_SPECIFIC.items():
            if self.source not in allowed and getattr(self, name) != _default(name):
                raise ConfigError(f"{flag(name)} applies to {' and '.join('--' + s for s in allowed)} only")
        if self.require_delegate and self.delegate in ("auto", "none"):
            raise ConfigError("--require-delegate needs --delegate edgetpu or xnnpack")
        if self.dashboard and self.broker == "none":
            raise ConfigError("--dashboard reads MQTT: it cannot run with --broker none")
        check_device_id(self.device_id)
        if self.dashboard_url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.dashboard_url):
            raise ConfigError(f"--dashboard-url {self.dashboard_url!r}: expected http://host[:port]/...")
        if self.watch_labels is not None and (not self.watched or len(set(self.watched)) != len(self.watched)):
            raise ConfigError(f"--watch-labels {self.watch_labels!r}: expected distinct labels separated by commas")
        if self.watched and self.top_k < (needed := watch_top_k(self.watch_min_score)):
            raise ConfigError(f"--watch-min-score {self.watch_min_score} needs --top-k {needed} or more: a watched "
                              f"label is read from the window's top_k, and with --top-k {self.top_k} one that "
                              f"reaches {self.watch_min_score} may not be listed")
        if self.broker == "none":  # a profile may be reused with a broker: check its values, not the connection's
            MqttSettings(url="mqtt://127.0.0.1", **{k: v for k, v in self.mqtt_options().items()
                                                     if k not in CONNECTION_KEYS})
        else:
            self.mqtt_settings()

    def mqtt_settings(self, url: str | None = None) -> MqttSettings:
        """The checked MQTT sink settings for ``url`` (default: ``--broker``, or the local default when that is
        unset or ``none``)."""
        url = url or (self.broker if self.broker not in (None, "none") else "mqtt://127.0.0.1")
        return MqttSettings(url=url, **self.mqtt_options())

    @property
    def source(self) -> str:
        """``mic``, ``file`` or ``stdin``."""
        return "file" if self.file else "stdin" if self.stdin else "mic"

    @property
    def watched(self) -> tuple[str, ...]:
        """``--watch-labels`` as a tuple of labels (empty when unset)."""
        return tuple(label.strip() for label in (self.watch_labels or "").split(",") if label.strip())

    def novelty(self) -> NoveltyConfig:
        """The novelty keys that were set, ``NoveltyConfig``'s defaults for the rest (ConfigError: a release above
        the threshold)."""
        return NoveltyConfig(**{name.removeprefix("novelty_"): getattr(self, name) for name in NOVELTY_KEYS
                                if getattr(self, name) is not None})

    def mqtt_options(self) -> dict[str, Any]:
        """The MQTT keys that were set, as ``MqttSettings`` keyword arguments (its defaults fill the rest)."""
        return {name: getattr(self, name) for name in MQTT_KEYS if getattr(self, name) is not None}


def watch_top_k(min_score: float) -> int:
    """The smallest ``top_k`` that lists every label of probability >= ``min_score``: the labels ranked above
    one hold more than ``min_score`` each and less than ``1 - min_score`` together."""
    return max(1, math.ceil((1.0 - min_score) / min_score - 1e-9))


def flag(name: str) -> str:
    """``top_k`` -> ``--top-k``."""
    return "--" + name.replace("_", "-")


def _default(name: str) -> Any:
    f = _FIELDS[name]
    return None if f.default is MISSING else f.default


def help_for(name: str) -> str:
    """The help text of setting ``name`` (for the CLI options)."""
    return _FIELDS[name].metadata["help"]


def group_of(name: str) -> str:
    """The group a setting is listed under in ``listen --help`` and docs/streaming.md."""
    names = list(_FIELDS)
    start = max((first for first in GROUPS if names.index(first) <= names.index(name)), key=names.index)
    return GROUPS[start]


def check_value(name: str, value: Any) -> Any:
    """Type-, range- and choice-check one setting; return it converted (str -> Path, int -> float).

    Raises
    ------
    ConfigError : naming the flag and what it accepts.
    """
    if value is None:
        return None
    meta, kind = _FIELDS[name].metadata, _TYPES[name]
    label = flag(name)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label} must be a whole number, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number, got {value!r}")
        value = float(value)
    elif kind is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{label} must be a path, got {value!r}")
        value = value if name == "jsonl" else Path(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{label} must be a string, got {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{label} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    low, high = meta["low"], meta["high"]
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{label} must be between {low:g} and {high:g}, got {value!r}")
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML/YAML config file into ``{field name: checked value}``; relative paths become relative to
    the file's directory.

    Raises
    ------
    ConfigError : unreadable file, syntax error, unknown key or bad value (naming the file and the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    raw = _parse(path, text)
    values = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: [{key}]: tables are not used; write every setting as 'key = value' "
                              "at the top level")
        name = str(key).replace("-", "_")
        if name not in _FIELDS or "_" in str(key):
            close = difflib.get_close_matches(str(key).replace("_", "-"), _KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(_KEYS)}"
            raise ConfigError(f"{path}: unknown key '{key}'{hint}")
        if isinstance(value, list):
            raise ConfigError(f"{path}: '{key}' must be a single value, not a list")
        try:
            value = check_value(name, value)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {str(exc).removeprefix('--')}") from None
        if _FIELDS[name].metadata["path"] and value is not None and str(value) != "-":
            value = type(value)(path.parent / Path(value).expanduser())
        values[name] = value
    return values


def _parse(path: Path, text: str) -> dict:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path}: YAML needs PyYAML (`pip install pyyaml`); or write the file as TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
        data = {} if data is None else data
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected 'key = value' settings at the top level")
    return data


def build_config(file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ListenConfig:
    """The effective config: defaults <- ``file`` <- ``overrides`` (CLI values; None means not given).

    A source chosen on the command line replaces the file's source together with the file's settings
    that only apply to that source (``--file x.wav`` on a microphone profile drops its ``device``).
    """
    values = load_config_file(file) if file is not None else {}
    given = {name: value for name, value in (overrides or {}).items() if value is not None}
    cli_source = next((name for name in SOURCES if given.get(name)), None)
    if cli_source is not None:
        values = {name: value for name, value in values.items() if name not in SOURCES
                  and cli_source in SOURCE_SPECIFIC.get(name, (cli_source,))}
    values.update(given)
    try:
        return ListenConfig(**values)
    except ConfigError as exc:
        if file is None:
            raise
        raise ConfigError(f"{exc} (settings from {file} and the command line)") from None


_FIELDS = {f.name: f for f in fields(ListenConfig)}
_KEYS = [name.replace("_", "-") for name in _FIELDS]
_TYPES = {name: next(t for t in (bool, int, float, Path, str) if t in typing.get_args(hint) or t is hint)
          for name, hint in typing.get_type_hints(ListenConfig).items()}
