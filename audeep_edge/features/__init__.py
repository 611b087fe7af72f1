"""The one spectrogram front end, shared by training (offline) and the streaming runtime."""

from audeep_edge.features.config import FrameGeometry, FrontendConfig, WindowFraming, WindowHop
from audeep_edge.features.mel import mel_centre_frequencies, mel_filterbank
from audeep_edge.features.normalize import (
    FLOOR_DB,
    LEVEL_FLOOR_DB,
    NORMALIZATIONS,
    STACKED,
    encoder_input,
    input_bands,
    level_features,
    minmax_scale,
    power_db,
    to_db,
    window_features,
)
from audeep_edge.features.offline import Extracted, extract, fix_length
from audeep_edge.features.streaming import StreamingFrontend

__all__ = [
    "FrontendConfig",
    "FrameGeometry",
    "WindowFraming",
    "WindowHop",
    "StreamingFrontend",
    "mel_filterbank",
    "mel_centre_frequencies",
    "to_db",
    "minmax_scale",
    "window_features",
    "power_db",
    "encoder_input",
    "input_bands",
    "level_features",
    "STACKED",
    "LEVEL_FLOOR_DB",
    "NORMALIZATIONS",
    "FLOOR_DB",
    "Extracted",
    "extract",
    "fix_length",
]
