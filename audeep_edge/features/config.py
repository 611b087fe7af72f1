"""Front-end settings (auDeep's ``preprocess`` options) and the frame geometry they imply."""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass, field, fields

from audeep_edge.audio.channels import CHANNEL_MODES
from audeep_edge.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameGeometry:
    """STFT framing in samples. Frame k covers samples ``[k·hop, k·hop + n_fft)``."""

    fs: int
    n_fft: int
    overlap: int

    @property
    def hop(self) -> int:
        return self.n_fft - self.overlap

    def num_frames(self, num_samples: int) -> int:
        """Frames in a signal of ``num_samples`` (no padding, as scipy.signal.spectrogram)."""
        return max(0, (num_samples - self.overlap) // self.hop)

    def span(self, frames: int) -> int:
        """Samples that ``frames`` consecutive frames cover (``frames`` >= 1)."""
        return (frames - 1) * self.hop + self.n_fft

    def seconds(self, frames: int) -> float:
        """``frames`` frame hops in seconds."""
        return frames * self.hop / self.fs


@dataclass(frozen=True)
class FrontendConfig:
    """Spectrogram settings with auDeep's defaults.

    Parameters
    ----------
    window_width, window_overlap : FFT window length and overlap in seconds (hop = width - overlap).
    mel_bands : number of mel filters; None gives the linear power spectrogram (n_fft/2 + 1 bins).
    clip_below, clip_above : floor / ceiling in dB relative to the clip (or window) maximum.
    fixed_length : pad or cut audio to this many seconds; center_fixed pads/cuts symmetrically.
    chunk_length, chunk_count : split each clip into ``chunk_count`` chunks of ``chunk_length`` seconds.
    channels : MEAN, DIFF, LEFT or RIGHT.
    sample_rate : resample to this rate in Hz first (None keeps each file's own rate, as auDeep).
    pre_emphasis : coefficient of ``y[n] = x[n] - a·x[n-1]``.
    """

    window_width: float = 0.04
    window_overlap: float = 0.02
    mel_bands: int | None = None
    clip_below: float | None = None
    clip_above: float | None = None
    fixed_length: float | None = None
    center_fixed: bool = False
    chunk_length: float | None = None
    chunk_count: int | None = None
    channels: str = "MEAN"
    sample_rate: int | None = None
    pre_emphasis: float = field(default=0.95)

    def __post_init__(self) -> None:
        if not 0 < self.window_width:
            raise ConfigError(f"--window-width must be positive, got {self.window_width}")
        if not 0 <= self.window_overlap < self.window_width:
            raise ConfigError(
                f"--window-overlap must be in [0, window width {self.window_width}), got {self.window_overlap}"
            )
        if self.mel_bands is not None and self.mel_bands < 1:
            raise ConfigError(f"--mel-spectrum must be a positive number of filters, got {self.mel_bands}")
        for name in ("clip_below", "clip_above"):  # dB re the window's maximum (a bundle.json may hold anything)
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and math.isfinite(value) and value <= 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite dB value at or below 0 (re the "
                                  f"window's maximum), got {value!r}")
        if self.clip_below is not None and self.clip_above is not None and self.clip_below >= self.clip_above:
            raise ConfigError(f"--clip-below {self.clip_below} must be lower than --clip-above {self.clip_above}")
        if (self.chunk_length is None) != (self.chunk_count is None):
            raise ConfigError("--chunk-length and --chunk-count must be given together")
        if self.chunk_count is not None and (self.chunk_count < 1 or self.chunk_length <= 0):
            raise ConfigError("--chunk-length must be positive and --chunk-count at least 1")
        if self.fixed_length is not None and self.fixed_length <= self.window_width:
            raise ConfigError(f"--fixed-length {self.fixed_length} s is shorter than one window")
        if self.channels.upper() not in CHANNEL_MODES:
            raise ConfigError(f"--channels must be one of {', '.join(CHANNEL_MODES)}, got {self.channels!r}")
        object.__setattr__(self, "channels", self.channels.upper())
        if self.sample_rate is not None and self.sample_rate < 1000:
            raise ConfigError(f"--sample-rate must be at least 1000 Hz, got {self.sample_rate}")
        if not 0 <= self.pre_emphasis < 1:
            raise ConfigError(f"pre-emphasis must be in [0, 1), got {self.pre_emphasis}")

    @functools.lru_cache(maxsize=32)  # noqa: B019 - frozen settings; also says the correction once, not per clip
    def geometry(self, fs: int) -> FrameGeometry:
        """Frame geometry at ``fs`` Hz, with auDeep's frame-count correction for fixed-length audio."""
        n_fft = int(fs * self.window_width)
        overlap = int(fs * self.window_overlap)
        if n_fft < 2:
            raise ConfigError(f"window of {self.window_width} s is shorter than 2 samples at {fs} Hz")
        if self.fixed_length is not None:
            expected = int((self.fixed_length - self.window_overlap) / (self.window_width - self.window_overlap))
            actual = (int(self.fixed_length * fs) - overlap) // (n_fft - overlap)
            if actual != expected:
                log.warning("adjusting window overlap by one sample: %d frames instead of %d", actual, expected)
                overlap += -1 if actual > expected else 1
        return FrameGeometry(fs=int(fs), n_fft=n_fft, overlap=overlap)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontendConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown front-end settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class WindowHop:
    """The stride between encoder windows: ``wanted`` seconds rounded to ``frames`` whole spectrogram frames
    (at least 1), which last ``seconds``."""

    wanted: float
    frames: int
    seconds: float

    @property
    def rounded(self) -> bool:
        """Whether rounding to whole frames changed the hop."""
        return abs(self.seconds - self.wanted) > 1e-6


@dataclass(frozen=True)
class WindowFraming:
    """How audio becomes encoder windows (a bundle's front end; :class:`~audeep_edge.bundle.Bundle` extends it).

    Attributes
    ----------
    frontend : front-end settings (``sample_rate`` set).
    geometry : the exact STFT framing (n_fft and hop in samples).
    window_frames : T, spectrogram frames per window.
    hop_seconds : default stride between windows, in seconds.
    """

    frontend: FrontendConfig
    geometry: FrameGeometry
    window_frames: int
    hop_seconds: float

    @property
    def window_samples(self) -> int:
        """Samples one window covers, at ``geometry.fs``."""
        return self.geometry.span(self.window_frames)

    @property
    def window_seconds(self) -> float:
        """Audio covered by one window, in seconds."""
        return self.window_samples / self.geometry.fs

    @property
    def padded_clip_seconds(self) -> float:
        """Length a shorter clip is zero-padded to (a window and a frame) so that it still gives a window."""
        return (self.window_samples + self.geometry.hop) / self.geometry.fs

    def window_hop(self, seconds: float | None = None) -> WindowHop:
        """``seconds`` (default: ``hop_seconds``) rounded to whole frames."""
        wanted = seconds or self.hop_seconds
        frames = max(1, round(wanted * self.geometry.fs / self.geometry.hop))
        return WindowHop(wanted=wanted, frames=frames, seconds=self.geometry.seconds(frames))
