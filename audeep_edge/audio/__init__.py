"""Audio in: reading files, mixing channels, resampling, levels."""

from audeep_edge.audio.channels import CHANNEL_MODES, mix
from audeep_edge.audio.io import check_finite, read_audio
from audeep_edge.audio.level import level_dbfs
from audeep_edge.audio.resample import StreamingResampler, resample

__all__ = ["CHANNEL_MODES", "mix", "read_audio", "check_finite", "level_dbfs", "StreamingResampler", "resample"]
