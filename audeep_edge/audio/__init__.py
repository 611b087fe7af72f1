"""Audio in: reading files, mixing channels, resampling, levels."""

from audeep_edge.audio.channels import CHANNEL_MODES, mix
from audeep_edge.audio.io import check_finite, read_audio, truncation
from audeep_edge.audio.level import beyond_full_scale, level_dbfs
from audeep_edge.audio.resample import StreamingResampler, resample

__all__ = ["CHANNEL_MODES", "mix", "read_audio", "check_finite", "truncation", "level_dbfs", "beyond_full_scale",
           "StreamingResampler", "resample"]
