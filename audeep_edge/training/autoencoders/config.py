"""Typed, validated autoencoder configurations (no Keras import).

Field names are auDeep's option names in snake case and every default is auDeep's
(docs/audeep.md#training-options-and-defaults).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from audeep_edge.errors import ConfigError

log = logging.getLogger(__name__)

CELLS = ("GRU", "LSTM")


@dataclass(frozen=True)
class RNNArchitecture:
    """A stack of ``num_layers`` recurrent layers of ``num_units`` each, optionally bidirectional.

    A bidirectional architecture is two independent stacks (forward and backward), as auDeep builds it.
    """

    num_layers: int
    num_units: int
    cell: str = "GRU"
    bidirectional: bool = False

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def states_per_layer(self) -> int:
        """Number of state vectors one layer of one direction carries (LSTM: c and h)."""
        return 2 if self.cell == "LSTM" else 1

    @property
    def state_size(self) -> int:
        """``L·U·(2 if LSTM)·(2 if bidirectional)``: the length of the concatenated state vector."""
        return self.num_layers * self.num_units * self.states_per_layer * self.directions


def _check(condition: bool, option: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{option}: {message}")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Options shared by all three autoencoders."""

    model_type: ClassVar[str]
    cell: str = "GRU"
    keep_prob: float = 0.8

    def __post_init__(self) -> None:
        _check(self.cell in CELLS, "--cell", f"must be GRU or LSTM, got {self.cell!r}")
        _check(0.0 < self.keep_prob <= 1.0, "--keep-prob", f"must be in (0, 1], got {self.keep_prob}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            option = "--" + f.name.replace("_", "-")
            if f.name.startswith("num_"):
                _check(isinstance(value, int) and value >= 1, option, f"must be a positive integer, got {value}")
            if f.name.endswith("_noise"):
                _check(0.0 <= value < 1.0, option, f"must be in [0, 1), got {value}")
            if f.name.endswith("feed_previous_prob"):
                _check(0.0 <= value <= 1.0, option, f"must be in [0, 1], got {value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def representation_size(self) -> int:
        """Length of the feature vector ``generate`` writes (per frame for f-RAE)."""
        raise NotImplementedError

    def check_input_shape(self, shape: tuple[int, int]) -> None:
        """Raise ConfigError if spectrograms of ``shape = (T, F)`` cannot feed this model."""
        _check(len(shape) == 2 and min(shape) >= 2, "--input",
               f"spectrograms must be (time, freq) with at least 2 frames and 2 bands, got shape {tuple(shape)}")


@dataclass(frozen=True)
class _FrequencyWindows:
    """Mixin: the frequency axis is read as a sequence of overlapping windows (docs/audeep.md#f-rae)."""

    freq_window_width: int = 32
    freq_window_overlap: int = 24

    def window_layout(self, num_bands: int) -> tuple[int, int]:
        """``(num_windows, step)`` for ``num_bands`` bands; trailing bins not covered are dropped."""
        step = self.freq_window_width - self.freq_window_overlap
        return (num_bands - self.freq_window_width) // step + 1, step

    def _check_windows(self, shape: tuple[int, int]) -> None:
        width, overlap = self.freq_window_width, self.freq_window_overlap
        _check(width >= 1, "--freq-window-width", f"must be >= 1, got {width}")
        _check(0 <= overlap < width, "--freq-window-overlap", f"must be in [0, {width}), got {overlap}")
        _check(width <= shape[1], "--freq-window-width",
               f"{width} is wider than the spectrograms' {shape[1]} frequency bands")
        num_windows, step = self.window_layout(shape[1])
        dropped = shape[1] - ((num_windows - 1) * step + width)
        if dropped:
            log.warning("frequency windows do not cover the last %d of %d bands; they are ignored",
                        dropped, shape[1])


@dataclass(frozen=True)
class TimeAutoencoderConfig(AutoencoderConfig):
    """t-RAE: recurrent over time; one vector per spectrogram (docs/audeep.md#t-rae)."""

    model_type: ClassVar[str] = "t-rae"
    num_layers: int = 1
    num_units: int = 16
    bidirectional_encoder: bool = False
    bidirectional_decoder: bool = False
    encoder_noise: float = 0.0
    feed_previous_prob: float = 0.0

    @property
    def encoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_layers, self.num_units, self.cell, self.bidirectional_encoder)

    @property
    def decoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_layers, self.num_units, self.cell, self.bidirectional_decoder)

    def representation_size(self) -> int:
        return self.decoder.state_size


@dataclass(frozen=True)
class FrequencyAutoencoderConfig(_FrequencyWindows, TimeAutoencoderConfig):
    """f-RAE: recurrent over frequency windows of each frame; one vector per frame (docs/audeep.md#f-rae)."""

    model_type: ClassVar[str] = "f-rae"

    def check_input_shape(self, shape: tuple[int, int]) -> None:
        super().check_input_shape(shape)
        self._check_windows(shape)


@dataclass(frozen=True)
class FrequencyTimeAutoencoderConfig(_FrequencyWindows, AutoencoderConfig):
    """ft-RAE: a frequency RNN per frame feeding a time RNN; one vector per spectrogram (docs/audeep.md#ft-rae)."""

    model_type: ClassVar[str] = "ft-rae"
    num_f_layers: int = 1
    num_f_units: int = 64
    num_t_layers: int = 2
    num_t_units: int = 128
    bidirectional_f_encoder: bool = False
    bidirectional_f_decoder: bool = False
    bidirectional_t_encoder: bool = False
    bidirectional_t_decoder: bool = False
    f_encoder_noise: float = 0.0
    t_encoder_noise: float = 0.0
    f_feed_previous_prob: float = 0.0
    t_feed_previous_prob: float = 0.0

    @property
    def f_encoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_f_layers, self.num_f_units, self.cell, self.bidirectional_f_encoder)

    @property
    def f_decoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_f_layers, self.num_f_units, self.cell, self.bidirectional_f_decoder)

    @property
    def t_encoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_t_layers, self.num_t_units, self.cell, self.bidirectional_t_encoder)

    @property
    def t_decoder(self) -> RNNArchitecture:
        return RNNArchitecture(self.num_t_layers, self.num_t_units, self.cell, self.bidirectional_t_decoder)

    def representation_size(self) -> int:
        return self.t_decoder.state_size

    def check_input_shape(self, shape: tuple[int, int]) -> None:
        super().check_input_shape(shape)
        self._check_windows(shape)


MODEL_CONFIGS: dict[str, type[AutoencoderConfig]] = {
    c.model_type: c for c in (TimeAutoencoderConfig, FrequencyAutoencoderConfig, FrequencyTimeAutoencoderConfig)
}


def config_from_dict(model_type: str, options: dict[str, Any]) -> AutoencoderConfig:
    """Rebuild a configuration stored by :meth:`AutoencoderConfig.to_dict`.

    Runs made before ``legacy_decoder`` was removed store it: ``false`` is dropped, ``true`` is refused.

    Raises
    ------
    ConfigError : unknown model type or option, or a run trained with the removed legacy decoder.
    """
    if model_type not in MODEL_CONFIGS:
        raise ConfigError(f"unknown autoencoder type {model_type!r}; expected one of {', '.join(MODEL_CONFIGS)}")
    options = dict(options)
    if options.pop("legacy_decoder", False):
        raise ConfigError(f"{model_type}: trained with auDeep's leaking --legacy-decoder, which was removed in "
                          "favour of the corrected decoder; retrain the run")
    cls = MODEL_CONFIGS[model_type]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{model_type}: unknown option(s) {', '.join(unknown)}")
    return cls(**options)
