"""The one assembly path: a :class:`~audeep_edge.config.ListenConfig` and a bundle -> the parts of a run
(:func:`assemble`: encoder, hop, adaptation; then source, windows, analyzer, pipeline), used by ``listen``,
``bench``, ``enroll`` and ``baseline fit``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from audeep_edge.bundle import Bundle, load_bundle
from audeep_edge.encoder import Encoder
from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.features import WindowHop
from audeep_edge.pipeline.analysis import WindowAnalyzer
from audeep_edge.pipeline.clips import ClipSaver, ClipSettings
from audeep_edge.pipeline.runner import Pipeline, label_fields
from audeep_edge.pipeline.windows import Window, Windower, source_windows
from audeep_edge.sinks.base import Sink
from audeep_edge.sources import FileSource, MicrophoneSource, Source, StdinSource

if TYPE_CHECKING:
    from audeep_edge.config import ListenConfig
    from audeep_edge.head.adaptation import Adaptation
    from audeep_edge.head.novelty import NoveltyConfig

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# The codebook encoder and auDeep's t-RAE, both learned from 7.8 h of unlabelled audio, side by side in one graph
# (docs/generalisation.md): on sounds they never heard, ESC-10 88.2 % linear / 75.7 % 5-shot and spoken digits
# 56.1 % / 32.5 %, where the codebook alone (general-*.bundle) scores 86.5 / 71.0 and 43.8 / 26.9 %.
# Dynamic-range int8 weights, 2.1 MB.
DEFAULT_BUNDLE = "general-fused-dynamic.bundle"
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


@dataclass(frozen=True)
class Assembly:
    """The parts of a run that :func:`assemble` builds once, and what is built from them.

    Attributes
    ----------
    cfg : the run's settings.
    bundle : its model bundle.
    hop : the hop between windows (``--hop`` or the bundle's, rounded to whole frames once).
    encoder : the bundle's model, checked against ``bundle.json``.
    novelty : when novelty scores become ``novel`` events.
    adaptation : the bundle's enrolled labels and novelty baseline; None when assembled without.
    """

    cfg: ListenConfig
    bundle: Bundle
    hop: WindowHop
    encoder: Encoder
    novelty: NoveltyConfig
    adaptation: Adaptation | None

    @property
    def labels(self) -> list[str]:
        """The bundle's labels, then the enrolled ones."""
        return self.adaptation.labels(self.bundle.labels) if self.adaptation is not None else self.bundle.labels

    def info(self) -> dict:
        """The retained ``info`` payload (schema v1); ``novelty_threshold`` is None without a novelty baseline."""
        b, baseline = self.bundle, self.adaptation is not None and self.adaptation.has_baseline
        return {"device_id": self.cfg.device_id, "bundle": b.name, "precision": b.precision,
                **label_fields(b.labels, self.labels), "embedding_size": b.embedding_size,
                "window_seconds": round(b.window_seconds, 6), "hop_seconds": round(self.hop.seconds, 6),
                "novelty_threshold": self.novelty.threshold if baseline else None}

    def open_source(self) -> Source:
        """The configured source; a microphone or pipe defaults to the bundle's rate and 1 channel (2 when the
        bundle mixes LEFT/RIGHT/DIFF). Opens nothing yet: capture starts when it is read."""
        cfg, bundle = self.cfg, self.bundle
        if cfg.source == "file":
            return FileSource(cfg.file, realtime=cfg.realtime, block_seconds=cfg.block)
        channels = cfg.channels or (1 if bundle.frontend.channels == "MEAN" else 2)
        if cfg.source == "stdin":
            rate = cfg.rate or bundle.geometry.fs
            log.info("reading %s PCM from stdin: %d Hz, %d channel(s)", cfg.format, rate, channels)
            return StdinSource(cfg.format, rate, channels, block_seconds=cfg.block)
        return MicrophoneSource(cfg.device, cfg.rate, channels, preferred_rate=bundle.geometry.fs,
                                block_seconds=cfg.block, queue_blocks=cfg.queue_blocks)

    def windows(self, source: Source | Path) -> Iterator[Window]:
        """The windows of ``source`` (a file shorter than a window zero-padded), as ``listen`` computes them."""
        return source_windows(self.bundle, source, hop_frames=self.hop.frames)

    def analyzer(self) -> WindowAnalyzer:
        """Model, head (with the adaptation) and payloads for this run's windows."""
        cfg, b = self.cfg, self.bundle
        return WindowAnalyzer(self.encoder, b.labels, clip_below=b.frontend.clip_below,
                              clip_above=b.frontend.clip_above, device_id=cfg.device_id, top_k=cfg.top_k,
                              smoothing=cfg.smoothing, smoothing_windows=cfg.smoothing_windows,
                              embeddings=cfg.embeddings, embedding_encoding=cfg.embedding_encoding,
                              adaptation=self.adaptation, normalization=b.normalization)

    def open_clips(self, source: Source) -> ClipSaver | None:
        """The clip saver ``--clips`` asks for (None without it); a novel sound's clip reaches back to its start.

        Raises
        ------
        ConfigError : the directory cannot be written.
        """
        cfg = self.cfg
        if cfg.clips is None:
            return None
        settings = ClipSettings(Path(cfg.clips), watch=cfg.watched, min_score=cfg.watch_min_score,
                                format=cfg.clip_format, pre_roll=cfg.clip_pre_roll, post_roll=cfg.clip_post_roll,
                                lead=self.novelty.min_duration, max_bytes=int(cfg.clips_max_mb * 1e6),
                                max_age_s=cfg.clips_max_age * 86400.0)
        return ClipSaver(settings, device_id=cfg.device_id, sample_rate=source.sample_rate,
                         window_seconds=self.bundle.window_seconds)

    def pipeline(self, source: Source, sinks: list[Sink]) -> Pipeline:
        """Windows, analysis, clips (``--clips``) and ``sinks`` for ``source``."""
        windower = Windower(self.bundle, hop_frames=self.hop.frames, source_rate=source.sample_rate)
        return Pipeline(source, windower, self.analyzer(), sinks, health_interval=self.cfg.health_interval,
                        max_windows=self.cfg.max_windows, clips=self.open_clips(source))


def assemble(cfg: ListenConfig, bundle: Bundle | None = None, *, adapt: bool = True) -> Assembly:
    """The run ``cfg`` describes, on ``bundle`` (default: the one ``cfg`` names); ``adapt=False`` leaves the
    enrolled labels and novelty baseline out (raw embeddings for ``enroll``/``baseline fit``).

    Raises
    ------
    ModelError : no such bundle, an unloadable model or one that differs from its manifest, a required delegate
        that is missing, or a baseline or enrollment made with another model. ConfigError : bad novelty settings.
    """
    bundle = bundle or find_bundle(cfg.bundle, cfg.precision)
    hop = bundle.window_hop(cfg.hop)
    if hop.rounded:
        log.info("hop %.4g s rounded to %d frames = %.4g s", hop.wanted, hop.frames, hop.seconds)
    novelty = cfg.novelty()
    adaptation = open_adaptation(bundle, novelty) if adapt else None
    return Assembly(cfg, bundle, hop, open_encoder(cfg, bundle), novelty, adaptation)


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


def open_adaptation(bundle: Bundle, novelty: NoveltyConfig) -> Adaptation:
    """The bundle's enrolled labels and novelty baseline (re-read when ``enroll``/``baseline fit`` rewrite them).

    Raises
    ------
    ModelError : a baseline or enrollment made with another model.
    """
    from audeep_edge.head.adaptation import Adaptation

    return Adaptation(bundle.path, bundle.manifest["sha256"], bundle.embedding_size,
                      accept_similarity=bundle.accept_similarity, events=novelty)


def check_watched(cfg: ListenConfig, labels: list[str]) -> None:
    """Raise ConfigError naming a ``--watch-labels`` entry that is none of ``labels`` (trained + enrolled)."""
    unknown = [label for label in cfg.watched if label not in labels]
    if unknown:
        raise ConfigError(f"--watch-labels: {', '.join(map(repr, unknown))} is not a label of this model; "
                          f"its labels: {', '.join(labels) or 'none (the bundle has no classifier)'}")
