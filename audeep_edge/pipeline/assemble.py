"""Builds the parts of a run from a :class:`~audeep_edge.config.ListenConfig` and a bundle (used by
``listen`` and ``bench``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from audeep_edge.bundle import Bundle, load_bundle
from audeep_edge.encoder import Encoder
from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.features import FrameGeometry
from audeep_edge.pipeline.analysis import WindowAnalyzer
from audeep_edge.pipeline.clips import ClipSaver, ClipSettings
from audeep_edge.pipeline.runner import Pipeline, label_fields
from audeep_edge.pipeline.windows import Windower
from audeep_edge.sinks.base import Sink
from audeep_edge.sources import FileSource, MicrophoneSource, Source, StdinSource

if TYPE_CHECKING:
    from audeep_edge.config import ListenConfig
    from audeep_edge.head.adaptation import Adaptation

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# The codebook encoder learned from 7.8 h of unlabelled audio (docs/generalisation.md): on sounds it never heard
# (ESC-10) 86.5 % linear / 72.1 % 5-shot against 72.5 % / 59.9 % for the ESC-10 t-RAE (esc10-*.bundle), which
# saw those very clips. Dynamic-range int8 weights, 0.56 MB.
DEFAULT_BUNDLE = "general-dynamic.bundle"
# The bundled auDeep t-RAE: what `train --unlabelled` trains a new autoencoder like when no --bundle is given.
AUTOENCODER_BUNDLE = "esc10-dynamic.bundle"


def find_bundle(value: Path | None, precision: str | None = None) -> Bundle:
    """Load ``--bundle``: a bundle directory, the name of a bundled model, or (None) the bundled default
    (``DEFAULT_BUNDLE``, else the first bundled model).

    Raises
    ------
    ModelError : no such bundle, a broken one, or one of another ``precision`` than required.
    """
    if value is None:
        candidates = sorted(ASSETS.glob("*.bundle"))
        if not candidates:
            raise ModelError("no --bundle given and this installation has no bundled model; pass --bundle DIR")
        value = ASSETS / DEFAULT_BUNDLE if (ASSETS / DEFAULT_BUNDLE).is_dir() else candidates[0]
    elif not value.exists():
        named = [ASSETS / value.name, ASSETS / f"{value.name}.bundle"]
        value = next((path for path in named if path.is_dir()), value)
    bundle = load_bundle(value)
    if precision is not None and bundle.precision != precision:
        raise ModelError(f"bundle {bundle.path} is {bundle.precision} but the config asks for --precision "
                         f"{precision}; use a bundle of that precision or change --precision")
    return bundle


def open_encoder(cfg: ListenConfig, bundle: Bundle) -> Encoder:
    """Load the bundle's model with the configured threads and delegate, checked against ``bundle.json``.

    Raises
    ------
    ModelError : an unloadable model, a required delegate that is missing, or a model whose input shape,
        embedding size or classes differ from the manifest's.
    """
    encoder = Encoder(bundle.model_path, threads=cfg.threads, delegate=cfg.delegate,
                      require_delegate=cfg.require_delegate)
    bundle.check_model(encoder)
    return encoder


def hop_frames(geometry: FrameGeometry, hop_seconds: float) -> int:
    """``hop_seconds`` in whole spectrogram frames (at least 1)."""
    return max(1, round(hop_seconds * geometry.fs / geometry.hop))


def open_source(cfg: ListenConfig, bundle: Bundle) -> Source:
    """The configured source; a microphone or pipe defaults to the bundle's rate and 1 channel (2 when the
    bundle mixes LEFT/RIGHT/DIFF)."""
    if cfg.source == "file":
        return FileSource(cfg.file, realtime=cfg.realtime, block_seconds=cfg.block)
    channels = cfg.channels or (1 if bundle.frontend.channels == "MEAN" else 2)
    if cfg.source == "stdin":
        rate = cfg.rate or bundle.geometry.fs
        log.info("reading %s PCM from stdin: %d Hz, %d channel(s)", cfg.format, rate, channels)
        return StdinSource(cfg.format, rate, channels, block_seconds=cfg.block)
    return MicrophoneSource(cfg.device, cfg.rate, channels, preferred_rate=bundle.geometry.fs,
                            block_seconds=cfg.block, queue_blocks=cfg.queue_blocks)


def open_adaptation(cfg: ListenConfig, bundle: Bundle) -> Adaptation:
    """The bundle's enrolled labels and novelty baseline (re-read when ``enroll``/``baseline fit`` rewrite them).

    Raises
    ------
    ModelError : a baseline or enrollment made with another model. ConfigError : bad novelty settings.
    """
    from audeep_edge.head.adaptation import Adaptation
    from audeep_edge.head.novelty import NoveltyConfig

    return Adaptation(bundle.path, bundle.manifest["sha256"], bundle.embedding_size,
                      events=NoveltyConfig(**cfg.novelty_options()))


def info_payload(bundle: Bundle, device_id: str, hop_seconds: float, labels: list[str] | None = None,
                 novelty_threshold: float | None = None) -> dict:
    """The retained ``info`` payload (schema v1); ``labels`` (the bundle's, then the enrolled ones) default to the
    bundle's; ``novelty_threshold`` is None without a novelty baseline."""
    return {"device_id": device_id, "bundle": bundle.name, "precision": bundle.precision,
            **label_fields(bundle.labels, bundle.labels if labels is None else labels),
            "embedding_size": bundle.embedding_size,
            "window_seconds": round(bundle.window_seconds, 6), "hop_seconds": round(hop_seconds, 6),
            "novelty_threshold": novelty_threshold}


def effective_hop(cfg: ListenConfig, bundle: Bundle) -> float:
    """The hop actually used (``--hop`` or the bundle's, rounded to whole frames), in seconds; logs rounding."""
    g, wanted = bundle.geometry, cfg.hop or bundle.hop_seconds
    frames = hop_frames(g, wanted)
    actual = frames * g.hop / g.fs
    if abs(actual - wanted) > 1e-6:
        log.info("hop %.4g s rounded to %d frames = %.4g s", wanted, frames, actual)
    return actual


def build_pipeline(cfg: ListenConfig, bundle: Bundle, encoder: Encoder, source: Source, sinks: list[Sink],
                   adaptation: Adaptation | None = None) -> Pipeline:
    """Front end, windows, analysis (with ``adaptation``, see :func:`open_adaptation`) and sinks for ``source``."""
    fe, g = bundle.frontend, bundle.geometry
    windower = Windower(g, mel_bands=fe.mel_bands, pre_emphasis=fe.pre_emphasis, channels=fe.channels,
                        window_frames=bundle.window_frames, hop_frames=hop_frames(g, cfg.hop or bundle.hop_seconds),
                        source_rate=source.sample_rate)
    analyzer = WindowAnalyzer(encoder, bundle.labels, clip_below=fe.clip_below, clip_above=fe.clip_above,
                              device_id=cfg.device_id, top_k=cfg.top_k, smoothing=cfg.smoothing,
                              smoothing_windows=cfg.smoothing_windows, embeddings=cfg.embeddings,
                              embedding_encoding=cfg.embedding_encoding, adaptation=adaptation,
                              normalization=bundle.normalization)
    return Pipeline(source, windower, analyzer, sinks, health_interval=cfg.health_interval,
                    max_windows=cfg.max_windows, clips=open_clips(cfg, bundle, source))


def check_watched(cfg: ListenConfig, labels: list[str]) -> None:
    """Raise ConfigError naming a ``--watch-labels`` entry that is none of ``labels`` (trained + enrolled)."""
    unknown = [label for label in cfg.watched if label not in labels]
    if unknown:
        raise ConfigError(f"--watch-labels: {', '.join(map(repr, unknown))} is not a label of this model; "
                          f"its labels: {', '.join(labels) or 'none (the bundle has no classifier)'}")


def open_clips(cfg: ListenConfig, bundle: Bundle, source: Source) -> ClipSaver | None:
    """The clip saver ``--clips`` asks for (None without it).

    Raises
    ------
    ConfigError : the directory cannot be written.
    """
    if cfg.clips is None:
        return None
    settings = ClipSettings(Path(cfg.clips), watch=cfg.watched, min_score=cfg.watch_min_score, format=cfg.clip_format,
                            pre_roll=cfg.clip_pre_roll, post_roll=cfg.clip_post_roll,
                            max_bytes=int(cfg.clips_max_mb * 1e6), max_age_s=cfg.clips_max_age * 86400.0)
    return ClipSaver(settings, device_id=cfg.device_id, sample_rate=source.sample_rate,
                     window_seconds=bundle.window_seconds)
